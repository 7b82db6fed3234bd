"""web-identity-trust-pins-aud-and-sub: aud and sub pinned with StringEquals."""

from __future__ import annotations

from typing import Any

import pytest

from components import trust
from policy.rules import common
from policy.tests.engine import evaluate
from policy.tests.samples import (
    AUDIENCE,
    PREFIX,
    PROVIDER_ARN,
    SUBJECTS,
    TENANT,
    messages,
    project_trust,
    role,
)

PINNED = {f"{PREFIX}:aud": AUDIENCE, f"{PREFIX}:sub": SUBJECTS}


@pytest.mark.parametrize(
    "document",
    [
        project_trust(),
        trust.trust_policy(PROVIDER_ARN, TENANT, f"api://{SUBJECTS[0]}", SUBJECTS[:1]),
        project_trust(Action=[common.WEB_IDENTITY_ACTION]),
        # Other conditions may narrow further, with any operator.
        project_trust(
            Condition={"StringEquals": PINNED, "StringLike": {f"{PREFIX}:amr": "*federated*"}}
        ),
        {
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Principal": {"Federated": "accounts.google.com"},
                "Action": common.WEB_IDENTITY_ACTION,
                "Condition": {
                    "StringEquals": {"accounts.google.com:aud": "x", "accounts.google.com:sub": "y"}
                },
            },
        },
    ],
    ids=["project", "app-id-audience", "action-list", "extra-condition", "bare-issuer"],
)
def test_pinned_web_identity_trust_passes(document: dict[str, Any]) -> None:
    assert evaluate([role(document)]) == []


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            project_trust(
                Condition={
                    "StringEquals": {f"{PREFIX}:aud": AUDIENCE},
                    "StringLike": {f"{PREFIX}:sub": SUBJECTS},
                }
            ),
            "tests sts.windows.net",
        ),
        (project_trust(Condition={"StringEquals": {f"{PREFIX}:aud": AUDIENCE}}), ":sub with"),
        (project_trust(Condition={"StringEquals": {f"{PREFIX}:sub": SUBJECTS}}), ":aud with"),
        (project_trust(Condition={}), ":aud with"),
        (
            project_trust(Condition={"StringEquals": {**PINNED, f"{PREFIX}:aud": "api://*"}}),
            "wildcard",
        ),
        (project_trust(Condition={"StringEquals": {**PINNED, f"{PREFIX}:sub": []}}), ":sub with"),
        (
            project_trust(
                Condition={
                    "StringEquals": {f"{PREFIX}:aud": AUDIENCE},
                    "StringEqualsIfExists": {f"{PREFIX}:sub": SUBJECTS},
                }
            ),
            "StringEqualsIfExists",
        ),
        (
            project_trust(
                Condition={
                    "StringEquals": PINNED,
                    "ForAnyValue:StringLike": {f"{PREFIX}:sub": "*"},
                }
            ),
            "ForAnyValue:StringLike",
        ),
        (project_trust(Action=[common.WEB_IDENTITY_ACTION, "sts:TagSession"]), "exactly"),
        (project_trust(Action="sts:*"), "exactly"),
        (project_trust(Principal="*"), "without naming a Federated OIDC provider"),
        (project_trust(NotAction="sts:AssumeRole", Action=None), "NotPrincipal/NotAction"),
        ("{not json", "not a JSON policy document"),
    ],
    ids=[
        "sub-stringlike",
        "no-sub",
        "no-aud",
        "no-condition",
        "aud-wildcard",
        "sub-empty",
        "sub-if-exists",
        "forany-stringlike",
        "extra-action",
        "action-wildcard",
        "principal-star",
        "not-action",
        "not-json",
    ],
)
def test_loose_web_identity_trust_is_refused(document: Any, expected: str) -> None:
    found = evaluate([role(document)])
    assert {v.policy for v in found} == {"web-identity-trust-pins-aud-and-sub"}
    assert any(expected in v.message for v in found), [v.message for v in found]


def test_every_web_identity_statement_is_checked() -> None:
    document = project_trust()
    loose = dict(document["Statement"][0], Sid="Loose", Condition={"StringEquals": PINNED})
    del loose["Condition"]["StringEquals"][f"{PREFIX}:sub"]
    document["Statement"].append(loose)
    found = messages(role(document))
    assert found and all("'Loose'" in m for m in found)


@pytest.mark.parametrize(
    "statement",
    [
        {"Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"},
        {
            "Principal": {"Federated": "arn:aws:iam::123456789012:saml-provider/Entra"},
            "Action": "sts:AssumeRoleWithSAML",
        },
        {"Effect": "Deny", "Principal": {"Federated": PROVIDER_ARN}, "Action": "sts:*"},
    ],
    ids=["service-role", "saml", "deny"],
)
def test_roles_not_trusting_web_identity_are_not_this_rules_business(
    statement: dict[str, Any],
) -> None:
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **statement}]}
    assert evaluate([role(document)]) == []
