"""Stack configuration (`crosscloud:*` keys), parsed and validated once into a frozen dataclass.

Components never read `pulumi.Config`; they get what they need from `Settings`. Every problem is
reported before any resource is registered, each naming the key, the value and what is allowed.
The rules (patterns, tags, the key prefix) are in components/validation.py, shared with the
foundation's settings (components/foundation_settings.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.naming import Names, bucket_name_problem
from components.regions import aws_region_problem, azure_location_problem
from components.trust import DEFAULT_APP_NAME
from components.validation import (
    AUDIENCE_APP_ID,
    AUDIENCE_TENANT,
    GUID,
    IAM_ROLE_NAME,
    NAMESPACE,
    PREFIX,
    Parser,
    audience_problem,
    config_key,
    display_name_problem,
    key_prefix_problem,
    matches,
    namespace_problems,
    oidc_provider_arn_problem,
    parse_tags,
    stack_reference_problem,
    unknown_key_problem,
    within,
)
from shipping.build import DEFAULT_PYTHON_VERSION, PYTHON_VERSIONS

INSTANCE_MEMORY_MB = (2048, 4096)
# Flex Consumption's per-app scale-out limit.
MAXIMUM_INSTANCE_COUNT = (40, 1000)
# Log Analytics interactive retention on the PerGB2018 tier: 30-730 days
# (https://learn.microsoft.com/azure/azure-monitor/logs/data-retention-configure); the S3 access
# log bucket expires objects after the same number of days.
AUDIT_RETENTION_DAYS = (30, 730)
# Always-ready instances are billed while idle; the cap keeps a typo from becoming a bill.
ALWAYS_READY_INSTANCES = (0, 20)
# How the AWS readers' account gets outbound web identity federation (components/aws_readers.py).
OUTBOUND_FEDERATION_CHOICES = ("create", "existing")
BOOLEANS = {"true": True, "false": False}
# Who may run `pulumi up`: a person, or a CI service principal / managed identity. ARM's
# principalType values for them (Microsoft.Authorization/roleAssignments).
DEPLOYER_PRINCIPAL_TYPES = ("User", "ServicePrincipal")


class SettingsError(pulumi.RunError):
    """One or more `crosscloud:*` values are not allowed; the message lists each of them.

    A `RunError`: Pulumi's Python exec script (pulumi/pulumi sdk/python/cmd/
    pulumi-language-python-exec) catches `pulumi.RunError` and logs `str(error)` as an error
    without a traceback, where any other exception is logged as its full traceback (after a
    debug-level "Program failed with an unhandled exception:"). Either way the script exits
    with code 1, so the language host (cmd/pulumi-language-python/main.go) also reports
    "program exited with non-zero exit code: 1" after our message."""


@dataclass(frozen=True)
class AudienceChoice:
    """How the federation app's identifier URI (the token audience) is formed."""

    kind: str
    """`tenant` (api://{tenantId}/{appDisplayName}), `appId` (api://{appId}) or `custom`."""
    uri: str = ""
    """The identifier URI itself when `kind` is `custom`, else empty."""


@dataclass(frozen=True)
class Settings:
    """Validated stack settings. Field docs name the config key each comes from."""

    prefix: str = "crosscloud"
    """`crosscloud:prefix`: starts every resource name; 2-12 lowercase letters, digits, hyphens."""
    azure_location: str = "westeurope"
    """`crosscloud:azureLocation`: Azure region of everything Azure (must offer Flex)."""
    aws_region: str = "eu-west-1"
    """`crosscloud:awsRegion`: AWS region of the bucket and of the STS endpoint used."""
    audience: AudienceChoice = field(default_factory=lambda: AudienceChoice(AUDIENCE_TENANT))
    """`crosscloud:audience`: `tenant` (default), `appId`, or an `api://` / `https://` URI."""
    app_display_name: str = DEFAULT_APP_NAME
    """`crosscloud:appDisplayName`: display name of the Entra federation application."""
    aws_role_name: str = "S3AccessRoleFromAzure"
    """`crosscloud:awsRoleName`: name of the IAM role the identities assume."""
    bucket_name: str | None = None
    """`crosscloud:bucketName`: S3 bucket name; unset derives a unique one from prefix and stack."""
    s3_key_prefix: str = ""
    """`crosscloud:s3KeyPrefix`: limit the role to keys under this folder, which ends with `/`
    ("" = whole bucket)."""
    extra_principal_ids: tuple[str, ...] = ()
    """`crosscloud:extraPrincipalIds`: more service-principal object ids to trust (VMs, AKS...)."""
    python_version: str = DEFAULT_PYTHON_VERSION
    """`crosscloud:pythonVersion`: Python of the function apps and their package."""
    instance_memory_mb: int = 2048
    """`crosscloud:instanceMemoryMb`: Flex Consumption instance memory."""
    maximum_instance_count: int = 40
    """`crosscloud:maximumInstanceCount`: Flex Consumption scale-out limit per app."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """`crosscloud:tags`: tags put on every Azure resource and, as default tags, on AWS ones."""
    audit_retention_days: int = 90
    """`crosscloud:auditRetentionDays`: days the workspace and the S3 access-log bucket keep."""
    always_ready_instances: int = 0
    """`crosscloud:alwaysReadyInstances`: Flex always-ready instances of each app's HTTP group."""
    deployer_principal_type: str | None = None
    """`crosscloud:deployerPrincipalType`: `User` or `ServicePrincipal`, the principal type of
    whoever runs `pulumi up`; unset looks it up in Entra ID (components/deployer.py)."""
    foundation: str | None = None
    """`crosscloud:foundation`: `org/project/stack` of the foundation (foundation/) whose app
    and OIDC provider this environment shares; unset: the stack creates its own (standalone)."""
    aws_oidc_provider_arn: str | None = None
    """`crosscloud:awsOidcProviderArn`: an IAM OIDC provider created elsewhere for this tenant's
    issuer; unset: a standalone stack creates its own."""
    allow_unlisted_azure_location: bool = False
    """`crosscloud:allowUnlistedAzureLocation`: accept an `azureLocation` that is not on our list
    of Flex Consumption locations (components/regions.py), for a region newer than the list."""
    allow_unlisted_aws_region: bool = False
    """`crosscloud:allowUnlistedAwsRegion`: accept an `awsRegion` botocore does not list yet
    (it must still be shaped like a region of the aws, aws-cn or aws-us-gov partition)."""
    aws_readers: bool = False
    """`crosscloud:awsReaders`: `true` adds a Lambda that reads the data container with its IAM
    role only (components/aws_readers.py, docs/aws-readers.md)."""
    aws_outbound_federation: str = "create"
    """`crosscloud:awsOutboundFederation`: `create` enables IAM outbound web identity federation
    in the AWS account (protected from destroy; fails if the account already has it),
    `existing` reads the account's; with a foundation, the foundation owns it."""
    caller_app_display_name: str | None = None
    """`crosscloud:callerAppDisplayName`: display name of the reader API app (the front door's
    audience); unset: `{prefix}-{stack}-reader-api`."""
    caller_principal_ids: tuple[str, ...] = ()
    """`crosscloud:callerPrincipalIds`: object ids of users, groups, service principals or
    managed identities given the reader API's `CrossCloud.Read` role."""
    deployer_is_caller: bool = True
    """`crosscloud:deployerIsCaller`: whether whoever runs `pulumi up` gets `CrossCloud.Read`
    too (so `make verify` can call the apps with the operator's own token)."""


def _boolean(parser: Parser, name: str, default: bool) -> bool:
    """`true`/`false` (Pulumi hands config to programs as text)."""
    value = parser.raw.get(name)
    if value is None:
        return default
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        parser.fail(name, value, "true or false")
        return default
    return text == "true"


def audience_choice(value: str) -> AudienceChoice:
    """The `AudienceChoice` of a valid `crosscloud:audience` value."""
    if value in (AUDIENCE_TENANT, AUDIENCE_APP_ID):
        return AudienceChoice(value)
    return AudienceChoice("custom", value)


def _principal_ids(
    parser: Parser,
    name: str = "extraPrincipalIds",
    what: str = "a service-principal object id (a GUID)",
) -> tuple[str, ...]:
    value = parser.structured(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        parser.fail(name, parser.raw[name], "expected a list of object ids (GUID strings)")
        return ()
    ids = [item.strip().lower() for item in value]
    bad = [item for item in ids if not GUID.fullmatch(item)]
    if bad:
        parser.fail(name, bad, f"each entry must be {what}")
        return ()
    if len(set(ids)) != len(ids):
        parser.fail(name, parser.raw[name], "each object id may appear only once")
        return ()
    return tuple(ids)


ALLOWED_KEYS = (
    "prefix",
    "azureLocation",
    "awsRegion",
    "audience",
    "appDisplayName",
    "awsRoleName",
    "bucketName",
    "s3KeyPrefix",
    "extraPrincipalIds",
    "pythonVersion",
    "instanceMemoryMb",
    "maximumInstanceCount",
    "tags",
    "auditRetentionDays",
    "alwaysReadyInstances",
    "deployerPrincipalType",
    "foundation",
    "awsOidcProviderArn",
    "allowUnlistedAzureLocation",
    "allowUnlistedAwsRegion",
    "awsReaders",
    "awsOutboundFederation",
    "callerAppDisplayName",
    "callerPrincipalIds",
    "deployerIsCaller",
)
# Keys a foundation stack owns: an environment that names a foundation must not set them.
FOUNDATION_OWNED_KEYS = (
    "appDisplayName",
    "audience",
    "awsOidcProviderArn",
    "awsOutboundFederation",
)


def _identifier_uri_clash(settings: Settings, stack: str | None) -> list[str]:
    """The reader API and a standalone stack's federation app (audience `tenant`) both take
    `api://{tenantId}/{display name, spaces as '-'}`: equal names give both apps one URI, which
    Entra refuses for the second app half-way through `pulumi up` (identifier URIs are unique in
    a tenant). Compared without case too, to be safe. The reader API's default name needs the
    stack (`stack` None: only an explicit callerAppDisplayName is compared)."""
    if settings.foundation or settings.audience.kind != AUDIENCE_TENANT:
        return []
    caller = settings.caller_app_display_name
    if caller:
        described = f"{config_key('callerAppDisplayName')} = {caller!r}"
    elif stack is not None:
        caller = Names(settings.prefix, stack, "").reader_api_display_name
        described = f"the reader API's default name {caller!r}"
    else:
        return []
    uri_name = caller.replace(" ", "-")
    if uri_name.casefold() != settings.app_display_name.replace(" ", "-").casefold():
        return []
    return [
        f"{described} and {config_key('appDisplayName')} = {settings.app_display_name!r} give "
        f"the reader API and the federation app the same identifier URI "
        f"(api://{{tenantId}}/{uri_name}), which Entra refuses: each must be unique in the "
        f"tenant; set another {config_key('callerAppDisplayName')} (or appDisplayName)"
    ]


def python_version_problem(value: str) -> str | None:
    if value in PYTHON_VERSIONS:
        return None
    allowed = "one of " + ", ".join(PYTHON_VERSIONS)
    if re.fullmatch(r"\d+\.\d", value):
        # `pythonVersion: 3.10` unquoted is the YAML float 3.1.
        allowed += (
            f"; {value!r} is what YAML makes of an unquoted {value}0: put the version in quotes "
            f'({config_key("pythonVersion")}: "{PYTHON_VERSIONS[-1]}")'
        )
    return allowed


def parse_settings(
    raw: Mapping[str, Any],
    *,
    other_keys: Iterable[str] = (),
    project: str = NAMESPACE,
    stack: str | None = None,
) -> Settings:
    """Validate `crosscloud:*` values (keys without the namespace) into `Settings`.

    `other_keys` are the stack's config keys in other namespaces (full `namespace:name`): one
    whose namespace looks like a typo of `crosscloud`, or is `project`'s own, is refused too.
    `stack` (the Pulumi stack) lets defaults derived from it be checked too.
    Raises `SettingsError` listing every problem, each naming the key and what is allowed.
    """
    parser = Parser(raw)
    for name in sorted(set(raw) - set(ALLOWED_KEYS)):
        parser.problems.append(unknown_key_problem(name, ALLOWED_KEYS, "this project"))
    parser.problems.extend(namespace_problems(other_keys, project, ALLOWED_KEYS))
    defaults = Settings()
    allow_unlisted_azure_location = parser.boolean("allowUnlistedAzureLocation")
    allow_unlisted_aws_region = parser.boolean("allowUnlistedAwsRegion")
    audience = parser.string("audience", AUDIENCE_TENANT, audience_problem)
    bucket = parser.string("bucketName", "", lambda v: bucket_name_problem(v))
    python_version = parser.string("pythonVersion", defaults.python_version, python_version_problem)
    settings = Settings(
        prefix=parser.string(
            "prefix",
            defaults.prefix,
            matches(
                PREFIX,
                "2-12 lowercase letters, digits and single hyphens, starting with a letter",
            ),
        ),
        azure_location=parser.string(
            "azureLocation",
            defaults.azure_location,
            azure_location_problem(allow_unlisted_azure_location),
        ),
        aws_region=parser.string(
            "awsRegion", defaults.aws_region, aws_region_problem(allow_unlisted_aws_region)
        ),
        audience=audience_choice(audience),
        app_display_name=parser.string(
            "appDisplayName",
            defaults.app_display_name,
            display_name_problem,
        ),
        aws_role_name=parser.string(
            "awsRoleName",
            defaults.aws_role_name,
            matches(IAM_ROLE_NAME, "1-64 characters of letters, digits and + = , . @ _ -"),
        ),
        bucket_name=bucket or None,
        s3_key_prefix=parser.string("s3KeyPrefix", "", key_prefix_problem),
        extra_principal_ids=_principal_ids(parser),
        python_version=python_version,
        instance_memory_mb=parser.integer(
            "instanceMemoryMb",
            defaults.instance_memory_mb,
            lambda v: None if v in INSTANCE_MEMORY_MB else "2048 or 4096 (Flex Consumption sizes)",
        ),
        maximum_instance_count=parser.integer(
            "maximumInstanceCount",
            defaults.maximum_instance_count,
            within(MAXIMUM_INSTANCE_COUNT, "a whole number"),
        ),
        tags=parse_tags(parser),
        audit_retention_days=parser.integer(
            "auditRetentionDays",
            defaults.audit_retention_days,
            within(AUDIT_RETENTION_DAYS, "a whole number of days", "Log Analytics retention"),
        ),
        always_ready_instances=parser.integer(
            "alwaysReadyInstances",
            defaults.always_ready_instances,
            within(ALWAYS_READY_INSTANCES, "a whole number", "each instance is billed while idle"),
        ),
        deployer_principal_type=parser.string(
            "deployerPrincipalType",
            "",
            lambda v: (
                None
                if v in DEPLOYER_PRINCIPAL_TYPES
                else "one of " + ", ".join(DEPLOYER_PRINCIPAL_TYPES) + " (case-sensitive)"
            ),
        )
        or None,
        foundation=parser.string("foundation", "", stack_reference_problem) or None,
        aws_oidc_provider_arn=parser.string("awsOidcProviderArn", "", oidc_provider_arn_problem)
        or None,
        allow_unlisted_azure_location=allow_unlisted_azure_location,
        allow_unlisted_aws_region=allow_unlisted_aws_region,
        aws_readers=BOOLEANS[
            parser.string(
                "awsReaders",
                "false",
                lambda v: None if v in BOOLEANS else "true or false",
            )
        ],
        aws_outbound_federation=parser.string(
            "awsOutboundFederation",
            defaults.aws_outbound_federation,
            lambda v: (
                None
                if v in OUTBOUND_FEDERATION_CHOICES
                else "one of " + ", ".join(OUTBOUND_FEDERATION_CHOICES)
            ),
        ),
        caller_app_display_name=parser.string("callerAppDisplayName", "", display_name_problem)
        or None,
        caller_principal_ids=_principal_ids(
            parser,
            "callerPrincipalIds",
            "the object id (a GUID) of a user, group, service principal or managed identity",
        ),
        deployer_is_caller=_boolean(parser, "deployerIsCaller", defaults.deployer_is_caller),
    )
    if "foundation" in raw:
        for name in FOUNDATION_OWNED_KEYS:
            if name in raw:
                parser.problems.append(
                    f"{config_key(name)} and {config_key('foundation')} are both set: with a "
                    f"foundation, the foundation stack owns {config_key(name)}; remove it from "
                    "this stack"
                )
    parser.problems.extend(_identifier_uri_clash(settings, stack))
    if parser.problems:
        raise SettingsError(
            "invalid stack configuration:\n" + "\n".join(f"  - {p}" for p in parser.problems)
        )
    return settings


def all_config() -> dict[str, Any]:
    """Every config value of the stack, whatever its namespace (`pulumi.Config` can only get
    keys one knows): what the engine passes in `PULUMI_CONFIG` and the language host loads
    with `set_all_config` (mocks set it the same way)."""
    import pulumi.runtime

    return {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}


def split_config(everything: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`crosscloud:*` values (keys without the namespace) and the full keys of all others."""
    prefix = f"{NAMESPACE}:"
    ours = {k.removeprefix(prefix): v for k, v in everything.items() if k.startswith(prefix)}
    return ours, [k for k in everything if not k.startswith(prefix)]


def raw_config() -> dict[str, Any]:
    """Every `crosscloud:*` value the stack sets (from the Pulumi runtime), keys without the
    namespace. Shared by this project and the foundation (foundation_settings.py)."""
    return split_config(all_config())[0]


def load_settings() -> Settings:
    """Read every key the stack sets and validate the `crosscloud:*` ones (and refuse keys in
    a namespace that looks like a typo of it)."""
    raw, others = split_config(all_config())
    return parse_settings(
        raw, other_keys=others, project=pulumi.get_project(), stack=pulumi.get_stack()
    )
