"""Stack configuration (`crosscloud:*` keys), parsed and validated once into a frozen dataclass.

Components never read `pulumi.Config`; they get what they need from `Settings`. Every problem is
reported before any resource is registered, each naming the key, the value and what is allowed.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.naming import bucket_name_problem
from components.trust import DEFAULT_APP_NAME
from shipping.build import DEFAULT_PYTHON_VERSION, PYTHON_VERSIONS

NAMESPACE = "crosscloud"

# Patterns are applied with `fullmatch` (never `match` with `^...$`: `$` also matches before a
# trailing newline, so "abc\n" would pass and fail later, far from its config key).
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PREFIX = re.compile(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){1,11}")
_AZURE_LOCATION = re.compile(r"[a-z][a-z0-9]{2,39}")
_AWS_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html (RoleName)
_IAM_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
# Entra app display names allow most text; we keep to what reads well in portals and CLIs.
_DISPLAY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,119}")
_CUSTOM_AUDIENCE = re.compile(r"(?:api|https)://[A-Za-z0-9._~:/?#@!$&'()+,;=%-]{1,240}")
MAX_AUDIENCE_LENGTH = len("https://") + 240
"""The longest audience `crosscloud:audience` accepts (sizes a trust policy whose audience is
only known as an output, such as a foundation's)."""
# https://www.pulumi.com/docs/iac/concepts/stacks/#stackreferences: <organization>/<project>/<stack>
_STACK_REFERENCE = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")
# IAM names a provider after its URL without the scheme; Entra v1 issuers end with a slash.
_OIDC_PROVIDER_ARN = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:iam::\d{12}:oidc-provider/sts\.windows\.net/"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/?"
)

INSTANCE_MEMORY_MB = (2048, 4096)
# Log Analytics interactive retention on the PerGB2018 tier: 30-730 days
# (https://learn.microsoft.com/azure/azure-monitor/logs/data-retention-configure); the S3 access
# log bucket expires objects after the same number of days.
AUDIT_RETENTION_DAYS = (30, 730)
# Always-ready instances are billed while idle; the cap keeps a typo from becoming a bill.
ALWAYS_READY_INSTANCES = (0, 20)
AUDIENCE_TENANT = "tenant"
AUDIENCE_APP_ID = "appId"
# Who may run `pulumi up`: a person, or a CI service principal / managed identity. ARM's
# principalType values for them (Microsoft.Authorization/roleAssignments).
DEPLOYER_PRINCIPAL_TYPES = ("User", "ServicePrincipal")


class SettingsError(ValueError):
    """One or more `crosscloud:*` values are not allowed; the message lists each of them."""


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


def _key(name: str) -> str:
    return f"{NAMESPACE}:{name}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class _Parser:
    """Collects every problem so one `pulumi preview` shows them all, not one per run."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[str] = []

    def fail(self, name: str, value: Any, allowed: str) -> None:
        self.problems.append(f"{_key(name)} = {_text(value)!r} is not allowed: {allowed}")

    def string(self, name: str, default: str, check: Callable[[str], str | None]) -> str:
        value = self.raw.get(name)
        if value is None:
            return default
        if not isinstance(value, str):
            self.fail(name, value, "expected a string")
            return default
        problem = check(value)
        if problem:
            self.fail(name, value, problem)
            return default
        return value

    def structured(self, name: str, default: Any) -> Any:
        """Pulumi hands structured config (lists, maps) to programs as JSON text."""
        value = self.raw.get(name)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                self.fail(
                    name, value, "expected structured YAML/JSON config (use --path or a list)"
                )
                return default
        return value

    def integer(self, name: str, default: int, check: Callable[[int], str | None]) -> int:
        value = self.raw.get(name)
        if value is None:
            return default
        try:
            number = int(str(value), 10)
        except ValueError:
            self.fail(name, value, "expected a whole number")
            return default
        problem = check(number)
        if problem:
            self.fail(name, value, problem)
            return default
        return number


def _matches(pattern: re.Pattern[str], rule: str) -> Callable[[str], str | None]:
    return lambda value: None if pattern.fullmatch(value) else rule


def _display_name(value: str) -> str | None:
    return _matches(
        _DISPLAY_NAME,
        "1-120 characters of letters, digits, spaces, '.', '_' and '-', "
        "starting with a letter or digit",
    )(value)


def _audience(value: str) -> str | None:
    if value in (AUDIENCE_TENANT, AUDIENCE_APP_ID):
        return None
    if not _CUSTOM_AUDIENCE.fullmatch(value) or value.endswith("/") or "*" in value:
        return (
            f"'{AUDIENCE_TENANT}', '{AUDIENCE_APP_ID}', or an api:// or https:// URI without "
            "wildcards, spaces or a trailing slash (it must equal the token's aud exactly)"
        )
    return None


def _audience_choice(value: str) -> AudienceChoice:
    if value in (AUDIENCE_TENANT, AUDIENCE_APP_ID):
        return AudienceChoice(value)
    return AudienceChoice("custom", value)


def _stack_reference(value: str) -> str | None:
    if not _STACK_REFERENCE.fullmatch(value):
        return (
            "the foundation's fully qualified stack name, <organization>/<project>/<stack> "
            "(letters, digits, '-', '_' and '.')"
        )
    return None


def _oidc_provider_arn(value: str) -> str | None:
    if not _OIDC_PROVIDER_ARN.fullmatch(value):
        return (
            "the ARN of an IAM OIDC provider for an Entra tenant's v1 issuer, "
            "arn:<partition>:iam::<account id>:oidc-provider/sts.windows.net/<tenant id>/"
        )
    return None


# Characters no name should hold: controls (Cc, incl. U+0085 NEXT LINE), invisible format
# characters (Cf, incl. the bidi override U+202E that makes a name display as another), surrogates,
# private-use and unassigned code points, and the line/paragraph separators U+2028/U+2029.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _hidden(value: str) -> bool:
    return any(unicodedata.category(ch) in _HIDDEN_CATEGORIES for ch in value)


def _key_prefix(value: str) -> str | None:
    """The prefix is a folder, so the role's `bucket/{prefix}*` grant ends at a `/`.

    Without it, `reports` would grant `reports*`, which includes `reports-confidential/`.
    Refusing (rather than appending the slash) keeps the security boundary what the operator
    reads in the stack config.
    """
    if value == "":
        return None
    if not value.endswith("/"):
        return (
            f"a folder ending with '/': write {value + '/'!r} - without the slash the role "
            f"would also read every key starting with {value!r} (such as {value + '-private/'!r})"
        )
    if len(value.encode("utf-8")) > 512:
        return "up to 512 bytes of UTF-8"
    if _hidden(value):
        return "no control, format (such as U+202E) or line-separator characters"
    if any(ch in value for ch in "*?$\\"):
        return "no IAM wildcards ('*', '?'), policy variables ('$') or backslashes"
    segments = value[:-1].split("/")
    if value.startswith("/") or "" in segments:
        return "not starting with '/' and without empty segments ('//')"
    if any(segment in (".", "..") for segment in segments):
        return "without '.' or '..' segments"
    if any(segment != segment.strip() for segment in segments):
        return "no segment starting or ending with white space"
    return None


def _principal_ids(parser: _Parser) -> tuple[str, ...]:
    name = "extraPrincipalIds"
    value = parser.structured(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        parser.fail(name, parser.raw[name], "expected a list of object ids (GUID strings)")
        return ()
    ids = [item.strip().lower() for item in value]
    bad = [item for item in ids if not _GUID.fullmatch(item)]
    if bad:
        parser.fail(name, bad, "each entry must be a service-principal object id (a GUID)")
        return ()
    if len(set(ids)) != len(ids):
        parser.fail(name, parser.raw[name], "each object id may appear only once")
        return ()
    return tuple(ids)


# Tags must be accepted by both clouds, so each rule is the stricter of the two:
# - AWS (https://docs.aws.amazon.com/IAM/latest/APIReference/API_Tag.html and
#   https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html): keys 1-128 and values
#   0-256 characters of `[\p{L}\p{Z}\p{N}_.:/=+\-@]`; the `aws:` prefix (any case) is reserved.
# - Azure (https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources
#   #limitations): names up to 512 characters (128 on storage accounts), values up to 256; names
#   cannot contain `<`, `>`, `%`, `&`, `\`, `?` or `/`.
# - Count: the AWS provider's default tags reach every AWS resource, the sample S3 objects too,
#   and S3 allows 10 tags per object
#   (https://docs.aws.amazon.com/AmazonS3/latest/userguide/tagging-managing.html); Azure
#   resources take 50, of which the program adds 2.
MAX_TAGS = 10
_TAG_SYMBOLS = frozenset("_.:/=+-@")
_AZURE_TAG_NAME_FORBIDDEN = "<>%&\\?/"


def _tag_text_problem(text: str) -> str | None:
    for ch in text:
        category = unicodedata.category(ch)
        # \p{Z} also holds U+2028/U+2029 (line/paragraph separators); keep to Zs (spaces).
        if ch not in _TAG_SYMBOLS and category[0] not in "LN" and category != "Zs":
            return f"holds {ch!r}: only letters, digits, spaces and _ . : / = + - @ (AWS)"
    if text.lower().startswith("aws:"):
        return "starts with 'aws:', which AWS reserves"
    return None


def _tag_problems(name: Any, value: Any) -> list[str]:
    if not isinstance(name, str) or not isinstance(value, str):
        return [f"tag {name!r}: names and values must be strings"]
    problems = []
    if not 1 <= len(name) <= 128:
        problems.append(f"tag name {name[:40]!r}: 1-128 characters (AWS; Azure storage accounts)")
    if forbidden := sorted({ch for ch in name if ch in _AZURE_TAG_NAME_FORBIDDEN}):
        problems.append(
            f"tag name {name!r} holds {' '.join(forbidden)}: Azure tag names cannot contain "
            "< > % & \\ ? /"
        )
    elif problem := _tag_text_problem(name):
        problems.append(f"tag name {name!r} {problem}")
    if len(value) > 256:
        problems.append(f"tag {name!r}: values are at most 256 characters (both clouds)")
    if problem := _tag_text_problem(value):
        problems.append(f"tag {name!r} value {value!r} {problem}")
    return problems


def _tags(parser: _Parser) -> dict[str, str]:
    name = "tags"
    value = parser.structured(name, {})
    if not isinstance(value, dict):
        parser.fail(name, parser.raw[name], "expected a map of tag names to string values")
        return {}
    if len(value) > MAX_TAGS:
        parser.fail(name, parser.raw[name], f"at most {MAX_TAGS} tags")
        return {}
    problems = [p for k, v in value.items() for p in _tag_problems(k, v)]
    for problem in problems:
        parser.problems.append(f"{_key(name)}: {problem}")
    return {} if problems else dict(value)


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
)
# Keys a foundation stack owns: an environment that names a foundation must not set them.
FOUNDATION_OWNED_KEYS = ("appDisplayName", "audience", "awsOidcProviderArn")


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    """Validate `crosscloud:*` values (keys without the namespace) into `Settings`.

    Raises `SettingsError` listing every problem, each naming the key and what is allowed.
    """
    parser = _Parser(raw)
    unknown = sorted(set(raw) - set(ALLOWED_KEYS))
    for name in unknown:
        parser.problems.append(
            f"{_key(name)} is not a setting of this project (a typo?); known keys: "
            + ", ".join(_key(k) for k in ALLOWED_KEYS)
        )
    defaults = Settings()
    audience = parser.string("audience", AUDIENCE_TENANT, _audience)
    bucket = parser.string("bucketName", "", lambda v: bucket_name_problem(v))
    python_version = parser.string(
        "pythonVersion",
        defaults.python_version,
        lambda v: None if v in PYTHON_VERSIONS else "one of " + ", ".join(PYTHON_VERSIONS),
    )
    settings = Settings(
        prefix=parser.string(
            "prefix",
            defaults.prefix,
            _matches(
                _PREFIX,
                "2-12 lowercase letters, digits and single hyphens, starting with a letter",
            ),
        ),
        azure_location=parser.string(
            "azureLocation",
            defaults.azure_location,
            _matches(_AZURE_LOCATION, "an Azure region name such as westeurope or eastus2"),
        ),
        aws_region=parser.string(
            "awsRegion",
            defaults.aws_region,
            _matches(_AWS_REGION, "an AWS region code such as eu-west-1 or us-east-2"),
        ),
        audience=_audience_choice(audience),
        app_display_name=parser.string(
            "appDisplayName",
            defaults.app_display_name,
            _display_name,
        ),
        aws_role_name=parser.string(
            "awsRoleName",
            defaults.aws_role_name,
            _matches(_IAM_ROLE_NAME, "1-64 characters of letters, digits and + = , . @ _ -"),
        ),
        bucket_name=bucket or None,
        s3_key_prefix=parser.string("s3KeyPrefix", "", _key_prefix),
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
            lambda v: None if 40 <= v <= 1000 else "a whole number from 40 to 1000",
        ),
        tags=_tags(parser),
        audit_retention_days=parser.integer(
            "auditRetentionDays",
            defaults.audit_retention_days,
            lambda v: (
                None
                if AUDIT_RETENTION_DAYS[0] <= v <= AUDIT_RETENTION_DAYS[1]
                else "a whole number of days from 30 to 730 (Log Analytics retention)"
            ),
        ),
        always_ready_instances=parser.integer(
            "alwaysReadyInstances",
            defaults.always_ready_instances,
            lambda v: (
                None
                if ALWAYS_READY_INSTANCES[0] <= v <= ALWAYS_READY_INSTANCES[1]
                else "a whole number from 0 to 20 (each instance is billed while idle)"
            ),
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
        foundation=parser.string("foundation", "", _stack_reference) or None,
        aws_oidc_provider_arn=parser.string("awsOidcProviderArn", "", _oidc_provider_arn) or None,
    )
    if "foundation" in raw:
        for name in FOUNDATION_OWNED_KEYS:
            if name in raw:
                parser.problems.append(
                    f"{_key(name)} and {_key('foundation')} are both set: with a foundation, the "
                    f"foundation stack owns {_key(name)}; remove it from this stack"
                )
    if parser.problems:
        raise SettingsError(
            "invalid stack configuration:\n" + "\n".join(f"  - {p}" for p in parser.problems)
        )
    return settings


def raw_config() -> dict[str, Any]:
    """Every `crosscloud:*` value the stack sets (from the Pulumi runtime), keys without the
    namespace. Shared by this project and the foundation (foundation_settings.py)."""
    import pulumi.runtime  # imported here so `parse_settings` stays usable without Pulumi

    everything = {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    return {
        key.split(":", 1)[1]: value
        for key, value in everything.items()
        if key.startswith(f"{NAMESPACE}:")
    }


def load_settings() -> Settings:
    """Read every `crosscloud:*` key the stack sets and validate it."""
    return parse_settings(raw_config())
