"""A Lambda role that may call sts:GetWebIdentityToken names the token's audience.

IAM outbound web identity federation lets any principal with `sts:GetWebIdentityToken` mint a JWT
signed by the account, for whatever audience it asks; without a condition on
`sts:IdentityTokenAudience` a Lambda role (or anything else) could get tokens for any external
service that trusts the account's issuer. The key is multivalued (`Audience` is a list) and
"multivalued context keys require a condition set operator" (IAM User Guide, condition keys with
multiple values; id_roles_providers_outbound_policies.html), so the condition must be
`ForAllValues:StringEquals` (every requested audience is a named one) with named values, plus
`"Null": {"sts:IdentityTokenAudience": "false"}` (ForAllValues alone is also true when no
audience is in the request). A plain `StringEquals` on a multivalued key is not a set operator,
`ForAnyValue` lets extra audiences ride along, wildcards name nothing.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import Severity
from pulumi_policy.proxy import UnknownValueError

from .common import (
    IAM_POLICY,
    IAM_ROLE,
    IAM_ROLE_POLICY,
    IAM_ROLE_POLICY_ATTACHMENT,
    Finding,
    StackResource,
    as_list,
    document,
    has_wildcard,
    is_allow,
    links,
    names,
    stack_policy,
    statements,
)

ACTION = "sts:getwebidentitytoken"
AUDIENCE_KEY = "sts:identitytokenaudience"
SET_OPERATOR = "forallvalues:stringequals"


def _grants_token(statement: Mapping[str, Any]) -> bool:
    actions = [str(a).lower() for a in as_list(statement.get("Action"))]
    return any(fnmatch.fnmatchcase(ACTION, a) for a in actions)


def _audience_values(condition: Mapping[str, Any], operator: str) -> list[Any] | None:
    """The values `operator` tests `sts:IdentityTokenAudience` against, or None."""
    for name, pairs in condition.items():
        if str(name).lower() != operator or not isinstance(pairs, Mapping):
            continue
        for key, values in pairs.items():
            if str(key).lower() == AUDIENCE_KEY:
                return as_list(values)
    return None


def _audience_pinned(statement: Mapping[str, Any]) -> bool:
    """ForAllValues:StringEquals with named audiences, and a Null check that one is given."""
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return False
    named = [str(v) for v in _audience_values(condition, SET_OPERATOR) or []]
    present = _audience_values(condition, "null")
    return (
        bool(named)
        and not any(map(has_wildcard, named))
        and present is not None
        and len(present) == 1
        and str(present[0]).lower() == "false"
    )


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


def _lambda_roles(resources: Sequence[StackResource]) -> list[StackResource]:
    """Roles the Lambda service assumes (execution roles); an unknown trust counts as one."""
    roles = []
    for resource in resources:
        if resource.resource_type != IAM_ROLE:
            continue
        try:
            trust = document(resource.props.get("assumeRolePolicy"))
        except UnknownValueError:
            roles.append(resource)
            continue
        services = [
            str(service)
            for statement in (statements(trust) if trust else [])
            if is_allow(statement) and isinstance(statement.get("Principal"), Mapping)
            for service in as_list(statement["Principal"].get("Service"))
        ]
        if "lambda.amazonaws.com" in services:
            roles.append(resource)
    return roles


def check_token_audience(resources: Sequence[StackResource]) -> list[Finding]:
    """Every policy of a Lambda role that lets it call sts:GetWebIdentityToken names the
    audience: inline (`inlinePolicies`, `aws:iam/rolePolicy`) and attached policies of this
    stack."""
    policies = [r for r in resources if r.resource_type == IAM_POLICY]
    findings: list[Finding] = []
    for role in _lambda_roles(resources):
        role_names = names(role, "name", "id", "arn")
        for inline in as_list(role.props.get("inlinePolicies")):
            if isinstance(inline, Mapping):
                problems = token_audience_problems(inline.get("policy"), "an inline policy")
                findings += [Finding(p, role.urn) for p in problems]
        for resource in resources:
            kind = resource.resource_type
            if kind == IAM_ROLE_POLICY and links(resource, "role", role, role_names):
                problems = token_audience_problems(
                    resource.props.get("policy"), "the Lambda role's aws:iam/rolePolicy"
                )
                findings += [Finding(p, resource.urn) for p in problems]
            elif kind == IAM_ROLE_POLICY_ATTACHMENT and links(resource, "role", role, role_names):
                for policy in policies:
                    if links(resource, "policyArn", policy, names(policy, "arn", "id")):
                        problems = token_audience_problems(
                            policy.props.get("policy"), "a policy attached to the Lambda role"
                        )
                        findings += [Finding(p, resource.urn) for p in problems]
    return findings


POLICY = stack_policy(
    "web-identity-token-audience",
    "No Lambda role may call sts:GetWebIdentityToken (IAM outbound web identity federation) "
    "without a condition naming the token's audience.",
    check_token_audience,
    Severity.HIGH,
)
