"""docs/permissions.md, the one document of permissions, grants what a real `pulumi up` (and
destroy) asks.

Mocks need no permission; AWS and ARM refuse whatever the deployer lacks, half-way through an
update. Each resource type the program creates is mapped to the IAM actions its provider calls
(terraform-provider-aws, internal/service/s3 and internal/service/iam: create, read, update of
tags, delete), and every Azure role it assigns must be among the roles docs/permissions.md tells
teams to allow the deployer to assign. A type missing from the table below fails the test on
purpose: document its permissions, then add it here.
"""

from __future__ import annotations

import re
from pathlib import Path

from components.azure_roles import AzureRole
from localcloud.mocked_program import TENANT_ID, ProgramRun, run_program

REPO = Path(__file__).resolve().parents[2]
PERMISSIONS = REPO / "docs" / "permissions.md"

AWS_ACTIONS: dict[str, tuple[str, ...]] = {
    "aws:s3/bucket:Bucket": (
        "s3:CreateBucket",
        "s3:DeleteBucket",
        "s3:ListBucket",  # HeadBucket
        "s3:Get*",  # a read of aws_s3_bucket asks for every bucket setting
        "s3:PutBucketTagging",  # the provider's default tags
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": ("s3:PutBucketPublicAccessBlock",),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": ("s3:PutBucketOwnershipControls",),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "s3:PutEncryptionConfiguration",
    ),
    "aws:s3/bucketVersioning:BucketVersioning": ("s3:PutBucketVersioning",),
    "aws:s3/bucketPolicy:BucketPolicy": ("s3:PutBucketPolicy", "s3:DeleteBucketPolicy"),
    # PutBucketLifecycleConfiguration / DeleteBucketLifecycle are authorized as this action.
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (
        "s3:PutLifecycleConfiguration",
    ),
    "aws:s3/bucketLogging:BucketLogging": ("s3:PutBucketLogging",),
    # object.go: PutObject with the default tags (x-amz-tagging needs s3:PutObjectTagging), a
    # read lists the object's tags, and a delete in a versioned bucket (version_id set) goes
    # through deleteAllObjectVersions: ListObjectVersions + DeleteObject with a VersionId.
    "aws:s3/bucketObjectv2:BucketObjectv2": (
        "s3:PutObject",
        "s3:PutObjectTagging",
        "s3:GetObject",
        "s3:GetObjectTagging",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:ListBucketVersions",
    ),
    # openid_connect_provider.go; tag updates untag removed keys (UntagOpenIDConnectProvider).
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": (
        "iam:CreateOpenIDConnectProvider",
        "iam:GetOpenIDConnectProvider",
        "iam:DeleteOpenIDConnectProvider",
        "iam:TagOpenIDConnectProvider",
        "iam:UntagOpenIDConnectProvider",
        "iam:AddClientIDToOpenIDConnectProvider",
        "iam:RemoveClientIDFromOpenIDConnectProvider",
    ),
    "aws:iam/role:Role": (
        "iam:CreateRole",
        "iam:GetRole",
        "iam:UpdateRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:DeleteRole",
        "iam:TagRole",
        "iam:UntagRole",
        "iam:ListRolePolicies",
        "iam:ListAttachedRolePolicies",
        "iam:ListInstanceProfilesForRole",
    ),
    "aws:iam/rolePolicy:RolePolicy": (
        "iam:PutRolePolicy",
        "iam:GetRolePolicy",
        "iam:DeleteRolePolicy",
    ),
}

# Display names of the built-in roles (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
ROLE_NAMES = {
    AzureRole.STORAGE_BLOB_DATA_READER: "Storage Blob Data Reader",
    AzureRole.STORAGE_BLOB_DATA_CONTRIBUTOR: "Storage Blob Data Contributor",
    AzureRole.STORAGE_BLOB_DATA_OWNER: "Storage Blob Data Owner",
    AzureRole.MONITORING_METRICS_PUBLISHER: "Monitoring Metrics Publisher",
}


def permissions_row(starts_with: str) -> str:
    (row,) = [line for line in PERMISSIONS.read_text().splitlines() if line.startswith(starts_with)]
    return row


def documented_actions(row: str) -> set[str]:
    return set(re.findall(r"`((?:iam|s3|sts):[A-Za-z*]+)`", row))


def test_the_aws_row_lists_every_action_the_program_needs(any_run: ProgramRun):
    documented = documented_actions(permissions_row("| AWS account |"))
    types = {r.type for r in any_run.resources if r.custom and r.type.startswith("aws:")}
    undocumented = sorted(t for t in types if t not in AWS_ACTIONS)
    assert undocumented == [], "document the permissions of these types, then add them above"
    missing = {t: sorted(set(AWS_ACTIONS[t]) - documented) for t in types}
    assert {t: m for t, m in missing.items() if m} == {}


def test_every_tag_action_has_its_untag_action():
    # Removing a key from crosscloud:tags untags it; without Untag* that update fails.
    for row in (permissions_row("| AWS account |"), permissions_row("| | each listed account's")):
        actions = documented_actions(row)
        for action in actions:
            if action.startswith("iam:Tag"):
                assert action.replace("iam:Tag", "iam:Untag") in actions, action


def test_the_rbac_row_names_every_role_the_program_assigns(any_run: ProgramRun):
    row = permissions_row("| same scope | **Role Based Access Control Administrator**")
    assigned = {
        AzureRole(r.inputs["roleDefinitionId"].rsplit("/", 1)[-1])
        for r in any_run.of_type("azure-native:authorization:RoleAssignment")
    }
    assert AzureRole.MONITORING_METRICS_PUBLISHER in assigned  # the probe sees issue 12's grants
    assert sorted(ROLE_NAMES[role] for role in assigned if ROLE_NAMES[role] not in row) == []


def test_the_adopting_guides_rbac_condition_admits_every_role_the_program_assigns(
    any_run: ProgramRun,
):
    # docs/adopting.md constrains the deploy identity's RBAC administrator with an ABAC condition
    # on the role definition GUIDs; ARM refuses (AuthorizationFailed) an assignment of any other
    # role, half-way through `pulumi up`.
    guide = (REPO / "docs" / "adopting.md").read_text()
    (roles,) = re.findall(r'^ROLES="([^"]*)"$', guide, flags=re.MULTILINE)
    allowed = {guid.strip() for guid in roles.split(",")}
    assigned = {
        r.inputs["roleDefinitionId"].rsplit("/", 1)[-1]
        for r in any_run.of_type("azure-native:authorization:RoleAssignment")
    }
    assert sorted(assigned - allowed) == []


def test_the_preview_role_may_read_an_existing_provider():
    # With crosscloud:awsOidcProviderArn the program reads the provider while it runs, in a plain
    # preview too (components/oidc_provider.py, existing_provider_arn): without
    # iam:GetOpenIDConnectProvider the CI preview role fails every pull request.
    tenant = TENANT_ID
    arn = f"arn:aws:iam::123456789012:oidc-provider/sts.windows.net/{tenant}/"
    run = run_program(
        {"awsOidcProviderArn": arn},
        oidc_providers={
            arn: {
                "url": f"sts.windows.net/{tenant}/",
                "clientIdLists": [f"api://{tenant}/AWS-Federation-App"],
            }
        },
    )
    assert "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider" in run.invokes
    guide = PERMISSIONS.read_text()
    (preview,) = [p for p in guide.split("\n- ") if p.startswith("**preview**")]
    assert "`iam:GetOpenIDConnectProvider`" in preview


GRAPH_PERMISSION = re.compile(
    r"\b(?:Application|AppRoleAssignment|Directory)\.[A-Za-z]+\.[A-Za-z]+\b"
)


def test_the_example_foundation_stack_names_the_graph_permission_the_documents_name():
    # The program makes the deployer owner of the app and its service principal, so a service
    # principal deploying the foundation needs Application.ReadWrite.OwnedBy, not .All (azuread
    # application docs: OwnedBy with the deployer among `owners`).
    foundation_row = permissions_row("| 1. `pulumi up` in `foundation/` |")
    stack_file = (REPO / "foundation" / "Pulumi.shared.yaml").read_text()
    assert set(GRAPH_PERMISSION.findall(stack_file)) == {"Application.ReadWrite.OwnedBy"}
    assert set(GRAPH_PERMISSION.findall(foundation_row)) == {"Application.ReadWrite.OwnedBy"}
    documents = [PERMISSIONS, REPO / "docs" / "adopting.md", REPO / "README.md"]
    assert not [d.name for d in documents if "Application.ReadWrite.All" in d.read_text()]


# What the AWS readers' resources ask of the deployer (terraform-provider-aws, internal/service:
# iam/outbound_web_identity_federation.go Create/Read/Delete, iam/role.go create with tags, read
# (ListRolePolicies, ListAttachedRolePolicies) and delete (ListInstanceProfilesForRole),
# lambda/function.go and tags_gen.go, logs/group.go; tags: the provider's default tags).
READERS_ACTIONS: dict[str, tuple[str, ...]] = {
    "aws:iam/outboundWebIdentityFederation:OutboundWebIdentityFederation": (
        "iam:EnableOutboundWebIdentityFederation",
        "iam:GetOutboundWebIdentityFederationInfo",
        "iam:DisableOutboundWebIdentityFederation",
    ),
    "aws:iam/role:Role": (*AWS_ACTIONS["aws:iam/role:Role"], "iam:PassRole"),
    "aws:iam/rolePolicy:RolePolicy": AWS_ACTIONS["aws:iam/rolePolicy:RolePolicy"],
    "aws:lambda/function:Function": (
        "lambda:CreateFunction",
        "lambda:GetFunction",
        "lambda:UpdateFunctionCode",
        "lambda:UpdateFunctionConfiguration",
        "lambda:DeleteFunction",
        "lambda:TagResource",
        "lambda:UntagResource",
        "lambda:ListTags",
    ),
    "aws:cloudwatch/logGroup:LogGroup": (
        "logs:CreateLogGroup",
        "logs:PutRetentionPolicy",
        "logs:DescribeLogGroups",
        "logs:DeleteLogGroup",
        "logs:TagResource",
        "logs:UntagResource",
        "logs:ListTagsForResource",
    ),
}


def _readers_section() -> str:
    text = PERMISSIONS.read_text()
    start = text.index("## AWS readers")
    return text[start : text.index("\n## ", start + 1)]


def test_the_aws_readers_section_lists_every_action_their_resources_need():
    run = run_program({"awsReaders": True})
    documented = set(re.findall(r"`((?:iam|sts|lambda|logs):[A-Za-z*]+)`", _readers_section()))
    types = {r.type for r in run.resources if r.custom and r.type.startswith("aws:")}
    types -= {t for t in types if t in AWS_ACTIONS and t not in READERS_ACTIONS}
    undocumented = sorted(t for t in types if t not in READERS_ACTIONS)
    assert undocumented == [], "document the permissions of these types, then add them above"
    missing = {t: sorted(set(READERS_ACTIONS[t]) - documented) for t in types}
    assert {t: m for t, m in missing.items() if m} == {}
    # Read-after-create needs the Get in `create` mode too, not only with `existing`.
    create = _readers_section().split("with `existing`")[0]
    assert "`iam:GetOutboundWebIdentityFederationInfo`" in create


def test_every_aws_readers_tag_action_has_its_untag_action():
    actions = set(re.findall(r"`((?:iam|lambda|logs):[A-Za-z]+)`", _readers_section()))
    for action in actions:
        service, name = action.split(":")
        if name.startswith("Tag"):
            assert f"{service}:Un{name[0].lower()}{name[1:]}" in actions, action
