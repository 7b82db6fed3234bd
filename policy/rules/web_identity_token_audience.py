"""A role that may call sts:GetWebIdentityToken names the token's audience.

IAM outbound web identity federation lets any principal with `sts:GetWebIdentityToken` mint a JWT
signed by the account, for whatever audience it asks; without a condition on
`sts:IdentityTokenAudience` a Lambda role (or anything else) could get tokens for any external
service that trusts the account's issuer. The key is multivalued (`Audience` is a list), so the
condition must be `ForAllValues:StringEquals` (every requested audience is a named one) or
`StringEquals`, with named values; `ForAnyValue` lets extra audiences ride along, wildcards name
nothing (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_providers_outbound_policies.html).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from pulumi_policy import Severity

from .common import (
    IAM_POLICY,
    IAM_ROLE,
    IAM_ROLE_POLICY,
    Props,
    as_list,
    document,
    has_wildcard,
    is_allow,
    resource_policy,
    statements,
)

ACTION = "sts:getwebidentitytoken"
AUDIENCE_KEY = "sts:identitytokenaudience"
ACCEPTED_OPERATORS = ("stringequals", "forallvalues:stringequals")


def _grants_token(statement: Mapping[str, Any]) -> bool:
    actions = [str(a).lower() for a in as_list(statement.get("Action"))]
    return any(fnmatch.fnmatchcase(ACTION, a) for a in actions)


def _audience_pinned(statement: Mapping[str, Any]) -> bool:
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return False
    for operator, pairs in condition.items():
        if str(operator).lower() not in ACCEPTED_OPERATORS or not isinstance(pairs, Mapping):
            continue
        for key, values in pairs.items():
            named = [str(v) for v in as_list(values)]
            if str(key).lower() == AUDIENCE_KEY and named and not any(map(has_wildcard, named)):
                return True
    return False


def token_audience_problems(document_value: Any, what: str) -> list[str]:
    doc = document(document_value)
    if doc is None:
        return []
    return [
        f"{what} allows sts:GetWebIdentityToken without naming the audience: add "
        '"ForAllValues:StringEquals": {"sts:IdentityTokenAudience": [<audience>]} (and '
        '"Null": {"sts:IdentityTokenAudience": "false"}) so the role mints tokens for that '
        "audience only"
        for statement in statements(doc)
        if is_allow(statement) and _grants_token(statement) and not _audience_pinned(statement)
    ]


def check_token_audience(resource_type: str, props: Props) -> list[str]:
    if resource_type in (IAM_ROLE_POLICY, IAM_POLICY):
        return token_audience_problems(props.get("policy"), "the policy")
    if resource_type == IAM_ROLE:
        problems: list[str] = []
        for inline in as_list(props.get("inlinePolicies")):
            if isinstance(inline, Mapping):
                problems += token_audience_problems(inline.get("policy"), "an inline policy")
        return problems
    return []


POLICY = resource_policy(
    "web-identity-token-audience",
    "No role may call sts:GetWebIdentityToken (IAM outbound web identity federation) without a "
    "condition naming the token's audience.",
    check_token_audience,
    Severity.HIGH,
)
