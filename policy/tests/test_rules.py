"""Each rule with compliant and non-compliant inputs, through the pack's registered policies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from components import trust
from policy import rules
from policy.tests.engine import Resource, evaluate, not_run, policies_violated

TENANT = "11111111-2222-3333-4444-555555555555"
PROVIDER_ARN = f"arn:aws:iam::123456789012:oidc-provider/sts.windows.net/{TENANT}/"
PREFIX = f"sts.windows.net/{TENANT}/"
AUDIENCE = f"api://{TENANT}/AWS-Federation-App"
SUBJECTS = ["0f0e0d0c-0b0a-4909-8807-060504030201", "1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d"]
BUCKET = "crosscloud-dev-19cdf400"


def messages(resource: Resource) -> list[str]:
    return [v.message for v in evaluate([resource])]


# --- storage accounts ---------------------------------------------------------------------------


def test_storage_account_with_shared_key_off_passes() -> None:
    account = Resource(rules.STORAGE_ACCOUNT, {"accountName": "a", "allowSharedKeyAccess": False})
    assert evaluate([account]) == []


@pytest.mark.parametrize("props", [{"allowSharedKeyAccess": True}, {}], ids=["true", "unset"])
def test_storage_account_with_shared_key_on_or_unset_is_refused(props: dict[str, Any]) -> None:
    found = evaluate([Resource(rules.STORAGE_ACCOUNT, props)])
    assert [v.policy for v in found] == ["storage-account-shared-key-disabled"]
    assert "allowSharedKeyAccess must be false" in found[0].message


def test_unknown_value_is_left_to_the_engine() -> None:
    # The analyzer turns UnknownValueError into "can't run during preview" and runs the rule
    # again with the real value before `pulumi up` creates the resource.
    account = Resource(rules.STORAGE_ACCOUNT, {"allowSharedKeyAccess": UNKNOWN_STRING_VALUE})
    assert evaluate([account]) == []
    assert [(v.policy, v.urn) for v in not_run([account])] == [
        ("storage-account-shared-key-disabled", account.urn)
    ]


# --- key-based storage access -------------------------------------------------------------------


IDENTITY_SETTINGS = [
    {"name": "AzureWebJobsStorage__accountName", "value": "crosscloudhost19cdf400"},
    {"name": "AzureWebJobsStorage__credential", "value": "managedidentity"},
]
FUNCTION_APP = {
    "kind": "functionapp,linux",
    "httpsOnly": True,
    "siteConfig": {
        "appSettings": IDENTITY_SETTINGS,
        "minTlsVersion": "1.2",
        "scmMinTlsVersion": "1.2",
        "ftpsState": "Disabled",
    },
}
KEY_CONNECTION = "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=c2VjcmV0;"
SAS_URL = "https://x.blob.core.windows.net/c/p.zip?sv=2022-11-02&sr=b&sig=abc%3D"


def test_blob_resource_is_refused() -> None:
    found = evaluate([Resource(rules.BLOB, {"blobName": "hello.txt"})])
    assert [v.policy for v in found] == ["no-key-based-storage-access"]


def test_identity_based_app_settings_pass() -> None:
    assert evaluate([Resource(rules.WEB_APP, FUNCTION_APP)]) == []


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        (
            rules.WEB_APP,
            {
                **FUNCTION_APP,
                "siteConfig": {
                    **FUNCTION_APP["siteConfig"],
                    "appSettings": [{"name": "AzureWebJobsStorage", "value": KEY_CONNECTION}],
                },
            },
        ),
        (
            rules.WEB_APP,
            {
                **FUNCTION_APP,
                "siteConfig": {
                    **FUNCTION_APP["siteConfig"],
                    "connectionStrings": [{"name": "Data", "connectionString": KEY_CONNECTION}],
                },
            },
        ),
        (rules.WEB_APP_SETTINGS, {"properties": {"WEBSITE_RUN_FROM_PACKAGE": SAS_URL}}),
        (
            rules.WEB_APP_CONNECTION_STRINGS,
            {"properties": {"Data": {"value": KEY_CONNECTION, "type": "Custom"}}},
        ),
    ],
    ids=["app-setting-key", "connection-string-key", "settings-sas", "connection-strings-key"],
)
def test_storage_keys_and_sas_in_settings_are_refused(
    resource_type: str, props: dict[str, Any]
) -> None:
    found = evaluate([Resource(resource_type, props)])
    assert [v.policy for v in found] == ["no-key-based-storage-access"]
    assert "storage account key or SAS" in found[0].message


def test_settings_not_known_in_preview_do_not_hide_the_others() -> None:
    settings = [
        {"name": "AzureWebJobsStorage__clientId", "value": UNKNOWN_STRING_VALUE},
        {"name": "Data", "value": KEY_CONNECTION},
    ]
    app = Resource(rules.WEB_APP, function_app(appSettings=settings))
    assert not_run([app]) == []
    assert [v.policy for v in evaluate([app])] == ["no-key-based-storage-access"]


# --- S3 public access ---------------------------------------------------------------------------

ALL_BLOCKED = dict.fromkeys(rules.PUBLIC_ACCESS_FLAGS, True)


def bucket_and_block(block: dict[str, Any] | None, *, by_dependency: bool) -> list[Resource]:
    bucket = Resource("aws:s3/bucket:Bucket", {"bucket": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"})
    if block is None:
        return [bucket]
    deps = {"bucket": [bucket.urn]} if by_dependency else {}
    pab = Resource(rules.PUBLIC_ACCESS_BLOCK, block, name="pab", property_dependencies=deps)
    return [bucket, pab]


@pytest.mark.parametrize("by_dependency", [True, False], ids=["dependency", "value"])
def test_bucket_with_complete_public_access_block_passes(by_dependency: bool) -> None:
    # The engine links the block to the bucket through its `bucket` property's dependency;
    # a literal bucket name (no dependency) is matched by value.
    block = {**ALL_BLOCKED, "bucket": BUCKET if not by_dependency else UNKNOWN_STRING_VALUE}
    assert evaluate(bucket_and_block(block, by_dependency=by_dependency)) == []


@pytest.mark.parametrize("flag", rules.PUBLIC_ACCESS_FLAGS)
@pytest.mark.parametrize("value", [False, None], ids=["false", "unset"])
def test_public_access_block_missing_a_flag_is_refused(flag: str, value: bool | None) -> None:
    block = {**ALL_BLOCKED, "bucket": BUCKET}
    block.pop(flag) if value is None else block.update({flag: value})
    found = evaluate(bucket_and_block(block, by_dependency=False))
    assert [v.policy for v in found] == ["s3-public-access-block-complete"]
    assert flag in found[0].message


@pytest.mark.parametrize("bucket_type", sorted(rules.BUCKET_TYPES))
def test_bucket_without_public_access_block_is_refused(bucket_type: str) -> None:
    bucket = Resource(bucket_type, {"bucket": BUCKET})
    other = Resource(rules.PUBLIC_ACCESS_BLOCK, {**ALL_BLOCKED, "bucket": "another"}, name="pab")
    found = evaluate([bucket, other])
    assert [(v.policy, v.urn) for v in found] == [("s3-bucket-has-public-access-block", bucket.urn)]


# --- web-identity trust -------------------------------------------------------------------------


def project_trust(**changes: Any) -> dict[str, Any]:
    """The program's own trust policy (components/trust.py), with one statement's keys changed."""
    document = trust.trust_policy(PROVIDER_ARN, TENANT, AUDIENCE, SUBJECTS)
    document["Statement"][0].update(changes)
    return document


def role(document: Any) -> Resource:
    policy = document if isinstance(document, str) else json.dumps(document)
    return Resource(rules.IAM_ROLE, {"name": "S3AccessRoleFromAzure", "assumeRolePolicy": policy})


PINNED = {f"{PREFIX}:aud": AUDIENCE, f"{PREFIX}:sub": SUBJECTS}


@pytest.mark.parametrize(
    "document",
    [
        project_trust(),
        trust.trust_policy(PROVIDER_ARN, TENANT, f"api://{SUBJECTS[0]}", SUBJECTS[:1]),
        project_trust(Action=[rules.WEB_IDENTITY_ACTION]),
        # Other conditions may narrow further, with any operator.
        project_trust(
            Condition={"StringEquals": PINNED, "StringLike": {f"{PREFIX}:amr": "*federated*"}}
        ),
        {
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Principal": {"Federated": "accounts.google.com"},
                "Action": rules.WEB_IDENTITY_ACTION,
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
        (project_trust(Action=[rules.WEB_IDENTITY_ACTION, "sts:TagSession"]), "exactly"),
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


# --- what a web-identity role may do ------------------------------------------------------------


WEB_ROLE = role(project_trust())
OTHER_ROLE = Resource(
    rules.IAM_ROLE,
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
    return Resource(rules.IAM_ROLE_POLICY, props, name="read", property_dependencies=deps)


@pytest.mark.parametrize("key_prefix", ["", "reports/"])
@pytest.mark.parametrize("by_dependency", [True, False], ids=["dependency", "value"])
def test_project_read_policy_passes(key_prefix: str, by_dependency: bool) -> None:
    policy = json.dumps(trust.s3_read_policy(BUCKET, key_prefix))
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
    assert evaluate([WEB_ROLE, OTHER_ROLE, role_policy(broad, of=OTHER_ROLE)]) == []
    assert evaluate([WEB_ROLE, OTHER_ROLE, role_policy(broad, by_dependency=False)]) != []


def test_role_whose_trust_is_unknown_in_preview_is_judged_anyway() -> None:
    # On the first preview the provider ARN, hence the trust policy, is unknown; the permissions
    # are checked all the same rather than the rule giving up.
    unknown = Resource(rules.IAM_ROLE, {"name": "r", "assumeRolePolicy": UNKNOWN_STRING_VALUE})
    broad = role_policy(document(statement("s3:*", "*")), of=unknown)
    assert policies_violated([unknown, broad]) == {"web-identity-role-least-privilege"}
    assert {v.policy for v in not_run([unknown, broad])} == {"web-identity-trust-pins-aud-and-sub"}


def attachment(arn: str, **deps: list[str]) -> Resource:
    return Resource(
        rules.IAM_ROLE_POLICY_ATTACHMENT,
        {"role": WEB_ROLE.props["name"], "policyArn": arn},
        name="attach",
        property_dependencies=deps,
    )


def managed(policy: str) -> Resource:
    arn = "arn:aws:iam::123456789012:policy/crosscloud-read"
    return Resource(rules.IAM_POLICY, {"arn": arn, "policy": policy}, name="managed")


def test_attached_policy_defined_in_the_stack_is_checked() -> None:
    good = managed(json.dumps(trust.s3_read_policy(BUCKET)))
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
        rules.IAM_POLICY_ATTACHMENT,
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
    found = messages(Resource(rules.IAM_ROLE, props))
    assert any("inline policy 'broad'" in m for m in found)
    assert any("AWS managed policy" in m for m in found)


# --- function apps ------------------------------------------------------------------------------


def function_app(**site_config: Any) -> dict[str, Any]:
    return {**FUNCTION_APP, "siteConfig": {**FUNCTION_APP["siteConfig"], **site_config}}


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_function_app_with_https_tls12_and_no_ftp_passes(tls: str) -> None:
    app = Resource(rules.WEB_APP, function_app(minTlsVersion=tls, scmMinTlsVersion=tls))
    assert evaluate([app]) == []


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({**FUNCTION_APP, "httpsOnly": False}, "httpsOnly"),
        ({k: v for k, v in FUNCTION_APP.items() if k != "httpsOnly"}, "httpsOnly"),
        (function_app(minTlsVersion="1.1"), "minTlsVersion"),
        (function_app(minTlsVersion=None), "minTlsVersion"),
        (function_app(scmMinTlsVersion="1.0"), "scmMinTlsVersion"),
        (function_app(ftpsState="FtpsOnly"), "ftpsState"),
        (function_app(ftpsState="AllAllowed"), "ftpsState"),
        ({k: v for k, v in FUNCTION_APP.items() if k != "siteConfig"}, "ftpsState"),
    ],
    ids=[
        "http",
        "https-unset",
        "tls11",
        "tls-unset",
        "scm-tls10",
        "ftps",
        "ftp",
        "no-site-config",
    ],
)
def test_function_app_transport_problems_are_refused(props: dict[str, Any], expected: str) -> None:
    found = evaluate([Resource(rules.WEB_APP, props)])
    assert {v.policy for v in found} == {"function-app-https-tls12-no-ftp"}
    assert any(expected in v.message for v in found)


def test_web_apps_that_are_not_function_apps_are_not_this_rules_business() -> None:
    assert evaluate([Resource(rules.WEB_APP, {"kind": "app,linux", "httpsOnly": False})]) == []


# --- long-lived credentials ---------------------------------------------------------------------


@pytest.mark.parametrize("resource_type", sorted(rules.CREDENTIAL_TYPES))
def test_credential_resources_are_refused(resource_type: str) -> None:
    found = evaluate([Resource(resource_type, {})])
    assert [v.policy for v in found] == ["no-long-lived-credentials"]
    assert resource_type in found[0].message


def test_application_password_block_is_refused() -> None:
    app = {"displayName": "AWS-Federation-App", "identifierUris": [AUDIENCE]}
    assert evaluate([Resource(rules.AZUREAD_APPLICATION, app)]) == []
    with_password = dict(app, password={"displayName": "ci"})
    assert policies_violated([Resource(rules.AZUREAD_APPLICATION, with_password)]) == {
        "no-long-lived-credentials"
    }


@pytest.mark.parametrize("resource_type", [rules.WEB_APP_FTP_ALLOWED, rules.WEB_APP_SCM_ALLOWED])
def test_basic_auth_publishing_must_stay_off(resource_type: str) -> None:
    assert evaluate([Resource(resource_type, {"allow": False})]) == []
    assert policies_violated([Resource(resource_type, {"allow": True})]) == {
        "no-long-lived-credentials"
    }
