"""Configuration of the foundation project (foundation/), parsed and validated once.

The foundation holds what a tenant has once: the federation application and, in every AWS
account it lists, the IAM OIDC provider for the tenant's issuer. Its keys share the `crosscloud`
namespace and the rules of the environment stacks' keys (components/validation.py), so a value
that is valid in one is valid in the other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.regions import aws_partition, aws_region_problem
from components.settings import (
    AudienceChoice,
    SettingsError,
    all_config,
    audience_choice,
    split_config,
)
from components.trust import DEFAULT_APP_NAME
from components.validation import (
    AUDIENCE_TENANT,
    GUID,
    Parser,
    audience_problem,
    config_key,
    display_name_problem,
    namespace_problems,
    parse_tags,
    unknown_key_problem,
)

_ACCOUNT_ID = re.compile(r"\d{12}")
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-arns
_ROLE_ARN = re.compile(
    r"arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}"
)
# Account ids that are never anyone's: the example stack's (foundation/Pulumi.shared.yaml) and the
# one AWS's documentation uses; refused so the example never runs unedited.
PLACEHOLDER_ACCOUNT = re.compile(r"(\d)\1{11}|123456789012")


@dataclass(frozen=True)
class AwsAccount:
    """One AWS account the foundation puts an OIDC provider in."""

    account_id: str
    """The 12-digit account id: the key of the `awsOidcProviderArns` output."""
    deployment_role_arn: str
    """Role in that account the deployer assumes to create the provider (iam:*OpenIDConnect*)."""


@dataclass(frozen=True)
class FoundationSettings:
    """Validated foundation settings. Field docs name the config key each comes from."""

    audience: AudienceChoice = field(default_factory=lambda: AudienceChoice(AUDIENCE_TENANT))
    """`crosscloud:audience`: `tenant` (default), `appId`, or an `api://` / `https://` URI."""
    app_display_name: str = DEFAULT_APP_NAME
    """`crosscloud:appDisplayName`: display name of the Entra federation application."""
    aws_region: str = "eu-west-1"
    """`crosscloud:awsRegion`: region of the AWS providers (IAM itself is global)."""
    aws_accounts: tuple[AwsAccount, ...] = ()
    """`crosscloud:awsAccounts`: where to create a provider, each `{accountId, roleArn}`; empty
    means the one account the deployer's ambient AWS credentials belong to."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """`crosscloud:tags`: default tags of the AWS providers (Entra applications take none)."""
    aws_outbound_federation: str = "none"
    """`crosscloud:awsOutboundFederation`: `create` enables IAM outbound web identity federation
    in every listed account (protected from destroy), `existing` reads each account's, `none`
    leaves it alone; environments with `crosscloud:awsReaders` read the issuers it exports."""
    app_role_id: str | None = None
    """`crosscloud:appRoleId`: keep this id for `AssumeAWSRole` (the app role of an app moved in
    from a standalone stack, whose assignments name it); unset derives a stable one."""
    allow_unlisted_aws_region: bool = False
    """`crosscloud:allowUnlistedAwsRegion`: accept an `awsRegion` botocore does not list yet."""


ALLOWED_KEYS = (
    "audience",
    "appDisplayName",
    "awsRegion",
    "awsAccounts",
    "tags",
    "appRoleId",
    "allowUnlistedAwsRegion",
    "awsOutboundFederation",
)
OUTBOUND_FEDERATION_CHOICES = ("create", "existing", "none")


def _account_problem(account_id: object) -> str | None:
    """Why `accountId` cannot be used, else None."""
    if isinstance(account_id, int | float) and not isinstance(account_id, bool):
        # YAML reads `accountId: 012345678901` unquoted as a number and drops the leading zero.
        return (
            f"accountId {account_id!r} is a number: YAML read it unquoted (and would drop a "
            f'leading zero); put it in quotes: accountId: "{account_id}"'
        )
    if isinstance(account_id, str) and PLACEHOLDER_ACCOUNT.fullmatch(account_id):
        return (
            f"accountId {account_id!r} is a placeholder (the example stack's): put in your own "
            "AWS account ids, or [] for the account of the ambient AWS credentials"
        )
    return None


def _accounts(parser: Parser, region: str) -> tuple[AwsAccount, ...]:
    name = "awsAccounts"
    value = parser.structured(name, [])
    shape = "a list of {accountId: <12 digits>, roleArn: arn:aws:iam::<that account>:role/<name>}"
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        parser.fail(name, parser.raw[name], shape)
        return ()
    accounts: list[AwsAccount] = []
    partition = aws_partition(region)
    for item in value:
        account_id, role_arn = item.get("accountId"), item.get("roleArn")
        if problem := _account_problem(account_id):
            parser.problems.append(f"{config_key(name)}: {problem}")
            return ()
        role = _ROLE_ARN.fullmatch(role_arn) if isinstance(role_arn, str) else None
        if set(item) - {"accountId", "roleArn"} or not (
            isinstance(account_id, str) and _ACCOUNT_ID.fullmatch(account_id) and role
        ):
            parser.fail(name, item, shape)
            return ()
        if role.group(2) != account_id:
            parser.fail(
                name, item, f"roleArn must be a role in account {account_id}, the provider's"
            )
            return ()
        if partition and role.group(1) != partition:
            # One awsRegion means one partition: a provider for it cannot assume a role in
            # another partition (arn:aws-cn roles exist only for cn-* regions).
            parser.fail(
                name,
                item,
                f"roleArn is in partition {role.group(1)!r}, but {config_key('awsRegion')} "
                f"{region!r} is in {partition!r}: a foundation deploys to one partition; "
                "make one foundation per partition",
            )
            return ()
        accounts.append(AwsAccount(account_id, role_arn))
    ids = [a.account_id for a in accounts]
    if len(set(ids)) != len(ids):
        # IAM holds one provider per URL in an account: a second one would be refused.
        parser.fail(name, parser.raw[name], "each accountId may appear only once")
        return ()
    return tuple(accounts)


def parse_foundation_settings(
    raw: Mapping[str, Any], *, other_keys: Iterable[str] = (), project: str = ""
) -> FoundationSettings:
    """Validate the foundation's `crosscloud:*` values (keys without the namespace).

    `other_keys`: the stack's keys in other namespaces, checked for a mistyped `crosscloud`.
    Raises `SettingsError` listing every problem, each naming the key and what is allowed.
    """
    parser = Parser(raw)
    for name in sorted(set(raw) - set(ALLOWED_KEYS)):
        parser.problems.append(
            unknown_key_problem(
                name,
                ALLOWED_KEYS,
                "the foundation (environment settings go in the environment stacks)",
            )
        )
    parser.problems.extend(namespace_problems(other_keys, project, ALLOWED_KEYS))
    defaults = FoundationSettings()
    allow_unlisted_aws_region = parser.boolean("allowUnlistedAwsRegion")
    aws_region = parser.string(
        "awsRegion", defaults.aws_region, aws_region_problem(allow_unlisted_aws_region)
    )
    settings = FoundationSettings(
        audience=audience_choice(parser.string("audience", AUDIENCE_TENANT, audience_problem)),
        app_display_name=parser.string(
            "appDisplayName",
            defaults.app_display_name,
            display_name_problem,
        ),
        aws_region=aws_region,
        aws_accounts=_accounts(parser, aws_region),
        tags=parse_tags(parser),
        aws_outbound_federation=parser.string(
            "awsOutboundFederation",
            defaults.aws_outbound_federation,
            lambda v: (
                None
                if v in OUTBOUND_FEDERATION_CHOICES
                else "one of " + ", ".join(OUTBOUND_FEDERATION_CHOICES)
            ),
        ),
        app_role_id=parser.string(
            "appRoleId", "", lambda v: None if GUID.fullmatch(v) else "a lowercase GUID"
        )
        or None,
        allow_unlisted_aws_region=allow_unlisted_aws_region,
    )
    if parser.problems:
        raise SettingsError(
            "invalid foundation configuration:\n" + "\n".join(f"  - {p}" for p in parser.problems)
        )
    return settings


def load_foundation_settings(project: str) -> FoundationSettings:
    """Read every key the foundation stack sets and validate the `crosscloud:*` ones (keys in
    `project`'s namespace or a mistyped `crosscloud` are refused)."""
    raw, others = split_config(all_config())
    return parse_foundation_settings(raw, other_keys=others, project=project)
