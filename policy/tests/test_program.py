"""The pack over the program's own resources: the real `__main__.py` run under Pulumi mocks
(localcloud/mocked_program.py). The program must pass every rule, and each deliberately broken
copy of its resources must be caught by exactly the rule meant for it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from localcloud.mocked_program import ProgramRun, run_program
from policy.rules import common
from policy.rules.flex_site_config import FLEX_REFUSED_SITE_PROPERTIES
from policy.tests.engine import Resource, evaluate, policies_violated

Props = dict[str, Any]
Resources = list[Resource]


def as_resources(run: ProgramRun) -> Resources:
    """Custom resources as the analyzer gets them: inputs for resource policies, the (mocked)
    outputs for stack policies. Components carry no cloud properties, so they are left out.
    """
    return [
        Resource(r.type, r.inputs, name=r.name, outputs=r.state, urn=r.urn)
        for r in run.resources
        if r.custom
    ]


@pytest.fixture(scope="module")
def default_program() -> Resources:
    return as_resources(run_program())


@pytest.fixture(scope="module")
def extended_program() -> Resources:
    return as_resources(
        run_program(
            {
                "extraPrincipalIds": [
                    "0f0e0d0c-0b0a-4909-8807-060504030201",
                    "1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d",
                ],
                "s3KeyPrefix": "reports/",
                "audience": "appId",
            }
        )
    )


def test_the_program_passes_every_rule(default_program: Resources) -> None:
    assert evaluate(default_program) == []


def test_the_program_with_extra_identities_prefix_and_app_id_audience_passes(
    extended_program: Resources,
) -> None:
    assert evaluate(extended_program) == []


def test_the_rules_see_the_resources_they_guard(default_program: Resources) -> None:
    # Guards against a vacuous pass (a type token the program does not use, say).
    types = {r.type for r in default_program}
    guarded = {
        common.STORAGE_ACCOUNT,
        common.PUBLIC_ACCESS_BLOCK,
        common.IAM_ROLE,
        common.IAM_ROLE_POLICY,
        common.WEB_APP,
    }
    assert guarded <= types
    assert types & common.BUCKET_TYPES
    roles = [r for r in default_program if r.type == common.IAM_ROLE]
    assert any(common.trusts_web_identity(r.props["assumeRolePolicy"]) for r in roles)
    # The Flex rules apply to every app of the program.
    apps = [r for r in default_program if r.type == common.WEB_APP]
    assert apps and all(common.is_flex_app(r.props) for r in apps)


def test_the_program_sets_no_refused_site_property_and_no_ftp_policy(
    default_program: Resources, extended_program: Resources
) -> None:
    for program in (default_program, extended_program):
        for app in (r for r in program if r.type == common.WEB_APP):
            assert not set(app.props["siteConfig"]) & set(FLEX_REFUSED_SITE_PROPERTIES)
        assert not [r for r in program if r.type == common.WEB_APP_FTP_ALLOWED]


# --- broken variants ----------------------------------------------------------------------------

Change = Callable[[Props], None]


def changed(resources: Resources, resource_type: str, change: Change) -> Resources:
    """A copy in which the first resource of `resource_type` has `change` applied to its inputs
    and its outputs (the mocks' outputs echo the inputs).
    """
    target = next(r for r in resources if r.type == resource_type)
    props, outputs = copy.deepcopy(dict(target.props)), copy.deepcopy(dict(target.outputs or {}))
    change(props)
    change(outputs)
    replacement = Resource(target.type, props, name=target.name, outputs=outputs, urn=target.urn)
    return [replacement if r is target else r for r in resources]


def trust_change(edit: Callable[[dict[str, Any]], None]) -> Change:
    """Edit the role's trust policy document (JSON text) through its only statement."""

    def change(props: Props) -> None:
        document = json.loads(props["assumeRolePolicy"])
        edit(document["Statement"][0])
        props["assumeRolePolicy"] = json.dumps(document)

    return change


def read_policy_change(edit: Callable[[dict[str, Any]], None]) -> Change:
    """Edit the first statement of the role's inline read policy (JSON text)."""

    def change(props: Props) -> None:
        document = json.loads(props["policy"])
        edit(document["Statement"][0])
        props["policy"] = json.dumps(document)

    return change


def sub_to_string_like(statement: dict[str, Any]) -> None:
    equals = statement["Condition"]["StringEquals"]
    key = next(k for k in equals if k.endswith(":sub"))
    statement["Condition"]["StringLike"] = {key: "*"}
    del equals[key]


def drop_sub(statement: dict[str, Any]) -> None:
    equals = statement["Condition"]["StringEquals"]
    del equals[next(k for k in equals if k.endswith(":sub"))]


def site_config(**values: Any) -> Change:
    return lambda props: props["siteConfig"].update(values)


def drop_app_setting(name: str) -> Change:
    def change(props: Props) -> None:
        settings = props["siteConfig"]["appSettings"]
        settings[:] = [s for s in settings if s["name"] != name]

    return change


def add_app_setting(name: str, value: str) -> Change:
    return lambda props: props["siteConfig"]["appSettings"].append({"name": name, "value": value})


BROKEN_CHANGES: dict[str, tuple[str, Change, str]] = {
    # No tenant: the app could not tell who may call (issue 16).
    "open-front-door": (
        common.WEB_APP,
        drop_app_setting("CROSSCLOUD_TENANT_ID"),
        "function-app-callers-authenticated",
    ),
    "shared-key-on": (
        common.STORAGE_ACCOUNT,
        lambda p: p.update(allowSharedKeyAccess=True),
        "storage-account-shared-key-disabled",
    ),
    "public-access-partly-blocked": (
        common.PUBLIC_ACCESS_BLOCK,
        lambda p: p.update(restrictPublicBuckets=False),
        "s3-public-access-block-complete",
    ),
    "trust-sub-string-like": (
        common.IAM_ROLE,
        trust_change(sub_to_string_like),
        "web-identity-trust-pins-aud-and-sub",
    ),
    "trust-without-sub": (
        common.IAM_ROLE,
        trust_change(drop_sub),
        "web-identity-trust-pins-aud-and-sub",
    ),
    "trust-extra-action": (
        common.IAM_ROLE,
        trust_change(lambda s: s.update(Action=[s["Action"], "sts:TagSession"])),
        "web-identity-trust-pins-aud-and-sub",
    ),
    "read-any-s3-action": (
        common.IAM_ROLE_POLICY,
        read_policy_change(lambda s: s.update(Action="s3:*")),
        "web-identity-role-least-privilege",
    ),
    "read-every-bucket": (
        common.IAM_ROLE_POLICY,
        read_policy_change(lambda s: s.update(Resource="arn:aws:s3:::*")),
        "web-identity-role-least-privilege",
    ),
    "http-allowed": (
        common.WEB_APP,
        lambda p: p.update(httpsOnly=False),
        "function-app-https-tls12-no-ftp",
    ),
    "tls-1-0": (
        common.WEB_APP,
        site_config(minTlsVersion="1.0"),
        "function-app-https-tls12-no-ftp",
    ),
    # Flex refuses the key whatever its value (Azure/azure-cli#31414).
    "flex-ftps-state": (
        common.WEB_APP,
        site_config(ftpsState="Disabled"),
        "flex-app-site-config-supported",
    ),
    "flex-linux-fx-version": (
        common.WEB_APP,
        site_config(linuxFxVersion="Python|3.12"),
        "flex-app-site-config-supported",
    ),
    "flex-net-framework-version": (
        common.WEB_APP,
        site_config(netFrameworkVersion="v4.6"),
        "flex-app-site-config-supported",
    ),
    "host-storage-by-key": (
        common.WEB_APP,
        add_app_setting(
            "AzureWebJobsStorage",
            "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=c2VjcmV0;EndpointSuffix=x",
        ),
        "no-key-based-storage-access",
    ),
    "scm-basic-auth-on": (
        common.WEB_APP_SCM_ALLOWED,
        lambda p: p.update(allow=True),
        "no-long-lived-credentials",
    ),
}


@pytest.mark.parametrize("variant", sorted(BROKEN_CHANGES))
def test_each_broken_resource_is_caught_by_its_rule(
    default_program: Resources, variant: str
) -> None:
    resource_type, change, policy = BROKEN_CHANGES[variant]
    assert policies_violated(changed(default_program, resource_type, change)) == {policy}


def _added(resource_type: str, props: Props, name: str = "added") -> Resource:
    return Resource(resource_type, props, name=name)


def _role_name(resources: Resources) -> str:
    return next(r.props["name"] for r in resources if r.type == common.IAM_ROLE)


BROKEN_ADDITIONS: dict[str, tuple[Callable[[Resources], list[Resource]], str]] = {
    "s3-read-only-managed-policy": (
        lambda rs: [
            _added(
                common.IAM_ROLE_POLICY_ATTACHMENT,
                {
                    "role": _role_name(rs),
                    "policyArn": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
                },
            )
        ],
        "web-identity-role-least-privilege",
    ),
    "unguarded-bucket": (
        lambda rs: [_added("aws:s3/bucket:Bucket", {"bucket": "crosscloud-extra-bucket"})],
        "s3-bucket-has-public-access-block",
    ),
    "blob-uploaded-with-key": (
        lambda rs: [_added(common.BLOB, {"blobName": "hello.txt", "containerName": "mycontainer"})],
        "no-key-based-storage-access",
    ),
    "iam-user-with-key": (
        lambda rs: [
            _added("aws:iam/user:User", {"name": "ci"}, "ci"),
            _added("aws:iam/accessKey:AccessKey", {"user": "ci"}, "ci-key"),
        ],
        "no-long-lived-credentials",
    ),
    "ftp-policy-on-flex-app": (
        lambda rs: [
            _added(
                common.WEB_APP_FTP_ALLOWED,
                {"name": next(r.props["name"] for r in rs if r.type == common.WEB_APP)},
            )
        ],
        "flex-app-no-ftp-policy",
    ),
    "app-client-secret": (
        lambda rs: [
            _added("azuread:index/applicationPassword:ApplicationPassword", {"applicationId": "x"})
        ],
        "no-long-lived-credentials",
    ),
}


@pytest.mark.parametrize("variant", sorted(BROKEN_ADDITIONS))
def test_each_forbidden_addition_is_caught_by_its_rule(
    default_program: Resources, variant: str
) -> None:
    add, policy = BROKEN_ADDITIONS[variant]
    assert policies_violated(default_program + add(default_program)) == {policy}


def test_removing_the_public_access_block_is_caught(default_program: Resources) -> None:
    without = [r for r in default_program if r.type != common.PUBLIC_ACCESS_BLOCK]
    found = evaluate(without)
    buckets = {r.urn for r in default_program if r.type in common.BUCKET_TYPES}
    assert {(v.policy, v.urn) for v in found} == {
        ("s3-bucket-has-public-access-block", urn) for urn in buckets
    }
