"""A role trusting a web-identity (OIDC) provider pins `aud` and `sub` with StringEquals."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pulumi_policy import Severity

from .common import (
    IAM_ROLE,
    WEB_IDENTITY_ACTION,
    Props,
    as_list,
    document,
    federated,
    has_wildcard,
    is_web_identity_provider,
    resource_policy,
    web_identity_statements,
)


def condition_key_prefix(federated_principal: str) -> str:
    """IAM names an OIDC provider's condition keys after its URL without the scheme.

    `arn:aws:iam::123456789012:oidc-provider/sts.windows.net/{tid}/` -> `sts.windows.net/{tid}/`;
    a bare issuer such as `accounts.google.com` is its own prefix.
    """
    marker = ":oidc-provider/"
    if marker in federated_principal:
        return federated_principal.split(marker, 1)[1]
    return federated_principal


def _pinned_values(value: Any) -> list[str] | None:
    """The values a StringEquals condition pins, or None if it pins nothing usable."""
    values = as_list(value)
    if not values or not all(isinstance(v, str) and v for v in values):
        return None
    return values


def _statement_trust_problems(statement: Mapping[str, Any]) -> list[str]:
    sid = statement.get("Sid")
    where = f"trust statement {sid!r}" if sid else "a trust statement"
    problems: list[str] = []
    if "NotPrincipal" in statement or "NotAction" in statement:
        problems.append(f"{where} uses NotPrincipal/NotAction; name the principal and action")
    actions = as_list(statement.get("Action"))
    if [str(a).lower() for a in actions] != [WEB_IDENTITY_ACTION.lower()]:
        problems.append(
            f"{where} must allow exactly {WEB_IDENTITY_ACTION}, not {json.dumps(actions)}"
        )
    providers = [f for f in federated(statement) if is_web_identity_provider(f)]
    if not providers:
        problems.append(f"{where} grants web identity without naming a Federated OIDC provider")
    conditions = statement.get("Condition")
    conditions = conditions if isinstance(conditions, Mapping) else {}
    # Condition keys are case-insensitive in IAM; compare operators the same way to be safe.
    equals: dict[str, Any] = {}
    for operator, block in conditions.items():
        if operator.lower() == "stringequals" and isinstance(block, Mapping):
            equals.update({key.lower(): value for key, value in block.items()})
    for provider in providers:
        prefix = condition_key_prefix(provider)
        pinned = {f"{prefix}:aud".lower(), f"{prefix}:sub".lower()}
        for operator, block in conditions.items():
            if operator.lower() == "stringequals" or not isinstance(block, Mapping):
                continue
            # StringLike, StringEqualsIfExists, ForAnyValue:... would loosen the pin.
            problems += [
                f"{where} tests {key} with {operator}; only StringEquals pins it exactly"
                for key in block
                if key.lower() in pinned
            ]
        for claim in ("aud", "sub"):
            key = f"{prefix}:{claim}"
            values = _pinned_values(equals.get(key.lower()))
            if values is None:
                problems.append(
                    f"{where} must pin {key} with StringEquals to one or more exact values"
                )
            elif any(has_wildcard(v) for v in values):
                problems.append(f"{where} pins {key} to a value with a wildcard: {values}")
    return problems


def check_web_identity_trust(resource_type: str, props: Props) -> list[str]:
    """A role trusting a web-identity provider pins `aud` and `sub` with StringEquals.

    `aud` alone would let every principal of the tenant that can get a token for the audience
    assume the role; `sub` names the managed identities. Custom claims (roles, oid, appid) are
    not IAM condition keys, so nothing else could narrow it.
    """
    if resource_type != IAM_ROLE:
        return []
    doc = document(props.get("assumeRolePolicy"))
    if doc is None:
        return ["assumeRolePolicy is not a JSON policy document, so it cannot be checked"]
    return [p for s in web_identity_statements(doc) for p in _statement_trust_problems(s)]


POLICY = resource_policy(
    "web-identity-trust-pins-aud-and-sub",
    "A role trusting a web-identity provider allows only sts:AssumeRoleWithWebIdentity and "
    "pins the provider's aud and sub with StringEquals to exact values.",
    check_web_identity_trust,
    Severity.CRITICAL,
)
