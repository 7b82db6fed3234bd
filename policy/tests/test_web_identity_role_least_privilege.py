"""web-identity-role-least-privilege: named actions on named resources."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from components import trust
from policy.rules import common
from policy.tests.engine import Resource, evaluate, not_run, policies_violated
from policy.tests.samples import BUCKET, messages, project_trust, role

WEB_ROLE = role(project_trust())
OTHER_ROLE = Resource(
    common.IAM_ROLE,
    {
        "name": "lambda-exec",
        "assumeRolePolicy": json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    },
    name="other",
)


def statement(action: Any, resource: Any, **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def role_policy(policy: str, *, of: Resource = WEB_ROLE, by_dependency: bool = True) -> Resource:
    if by_dependency:
        props, deps = {"role": UNKNOWN_STRING_VALUE, "policy": policy}, {"role": [of.urn]}
    else:
        props, deps = {"role": of.props["name"], "policy": policy}, {}
    return Resource(common.IAM_ROLE_POLICY, props, name="read", property_dependencies=deps)


@pytest.mark.parametrize("key_prefix", ["", "reports/"])
@pytest.mark.parametrize("by_dependency", [True, False], ids=["dependency", "value"])
def test_project_read_policy_passes(key_prefix: str, by_dependency: bool) -> None:
    policy = json.dumps(trust.s3_read_policy(BUCKET, key_prefix, partition="aws"))
    assert evaluate([WEB_ROLE, role_policy(policy, by_dependency=by_dependency)]) == []


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (document(statement("s3:*", f"arn:aws:s3:::{BUCKET}/*")), "wildcard actions"),
        (document(statement("s3:Get*", f"arn:aws:s3:::{BUCKET}/*")), "wildcard actions"),
        (document(statement(["s3:GetObject", "*"], f"arn:aws:s3:::{BUCKET}/*")), "wildcard"),
        (document(statement("s3:GetObject", "*")), "wildcard resources"),
        (document(statement("s3:ListBucket", "arn:aws:s3:::*")), "wildcard resources"),
        (document(statement("s3:GetObject", "arn:aws:s3:::crosscloud-*/*")), "wildcard resources"),
        (document(statement("s3:GetObject", "arn:aws:*:::x")), "wildcard resources"),
        (document({"Effect": "Allow", "NotAction": "iam:*", "Resource": "x"}), "NotAction"),
        (document({"Effect": "Allow", "Action": "s3:GetObject"}), "without naming a Resource"),
        ("not json", "not a JSON policy document"),
    ],
    ids=[
        "service-star",
        "prefix-star",
        "star-in-list",
        "resource-star",
        "all-buckets",
        "bucket-wildcard",
        "service-wildcard",
        "not-action",
        "no-resource",
        "not-json",
    ],
)
def test_broad_inline_policy_of_web_identity_role_is_refused(policy: str, expected: str) -> None:
    read = role_policy(policy)
    found = evaluate([WEB_ROLE, read])
    assert {(v.policy, v.urn) for v in found} == {("web-identity-role-least-privilege", read.urn)}
    assert any(expected in v.message for v in found), [v.message for v in found]


def test_deny_statements_may_use_wildcards() -> None:
    policy = document(
        statement("s3:GetObject", f"arn:aws:s3:::{BUCKET}/*"),
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
    )
    assert evaluate([WEB_ROLE, role_policy(policy)]) == []


def test_policies_of_other_roles_are_not_this_rules_business() -> None:
    broad = document(statement("*", "*"))
    # (OTHER_ROLE is a Lambda role: with "*" it may mint tokens for any audience, which
    # web-identity-token-audience reports; this rule stays out of it.)
    found = policies_violated([WEB_ROLE, OTHER_ROLE, role_policy(broad, of=OTHER_ROLE)])
    assert found == {"web-identity-token-audience"}
    assert evaluate([WEB_ROLE, OTHER_ROLE, role_policy(broad, by_dependency=False)]) != []


def test_role_whose_trust_is_unknown_in_preview_is_judged_anyway() -> None:
    # On the first preview the provider ARN, hence the trust policy, is unknown; the permissions
    # are checked all the same rather than the rule giving up.
    unknown = Resource(common.IAM_ROLE, {"name": "r", "assumeRolePolicy": UNKNOWN_STRING_VALUE})
    broad = role_policy(document(statement("s3:*", "*")), of=unknown)
    assert policies_violated([unknown, broad]) == {"web-identity-role-least-privilege"}
    assert {v.policy for v in not_run([unknown, broad])} == {"web-identity-trust-pins-aud-and-sub"}


def attachment(arn: str, **deps: list[str]) -> Resource:
    return Resource(
        common.IAM_ROLE_POLICY_ATTACHMENT,
        {"role": WEB_ROLE.props["name"], "policyArn": arn},
        name="attach",
        property_dependencies=deps,
    )


def managed(policy: str) -> Resource:
    arn = "arn:aws:iam::123456789012:policy/crosscloud-read"
    return Resource(common.IAM_POLICY, {"arn": arn, "policy": policy}, name="managed")


def test_attached_policy_defined_in_the_stack_is_checked() -> None:
    good = managed(json.dumps(trust.s3_read_policy(BUCKET, partition="aws")))
    bad = managed(document(statement("s3:*", "*")))
    assert evaluate([WEB_ROLE, good, attachment(good.props["arn"])]) == []
    linked = attachment(UNKNOWN_STRING_VALUE, policyArn=[bad.urn])
    assert policies_violated([WEB_ROLE, bad, linked]) == {"web-identity-role-least-privilege"}


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        ("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess", "AWS managed policy"),
        ("arn:aws:iam::123456789012:policy/elsewhere", "does not define"),
    ],
    ids=["aws-managed", "undefined"],
)
def test_unverifiable_attachments_are_refused(arn: str, expected: str) -> None:
    policy_attachment = Resource(
        common.IAM_POLICY_ATTACHMENT,
        {"roles": ["S3AccessRoleFromAzure"], "policyArn": arn},
        name="legacy",
    )
    for attached in (attachment(arn), policy_attachment):
        found = evaluate([WEB_ROLE, attached])
        assert [(v.policy, v.urn) for v in found] == [
            ("web-identity-role-least-privilege", attached.urn)
        ]
        assert expected in found[0].message


def test_role_inline_and_managed_policy_arguments_are_checked() -> None:
    props = dict(
        WEB_ROLE.props,
        inlinePolicies=[{"name": "broad", "policy": document(statement("s3:*", "*"))}],
        managedPolicyArns=["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"],
    )
    found = messages(Resource(common.IAM_ROLE, props))
    assert any("inline policy 'broad'" in m for m in found)
    assert any("AWS managed policy" in m for m in found)
