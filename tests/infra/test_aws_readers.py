"""AWS readers (crosscloud:awsReaders): the security properties of what the program registers.

The role may get a token for Entra only (exact action and conditions) and write its own log
group; nothing else. The Azure identity trusts exactly that role from exactly that issuer, and
reads one container. Facts and sources: components/aws_readers.py.
"""

from __future__ import annotations

import base64
import inspect
import json
from pathlib import Path

import pulumi_aws
import pytest

from components import aws_readers
from components.aws_readers import ENTRA_AUDIENCE, MAX_TOKEN_DURATION_SECONDS
from components.azure_roles import AzureRole
from components.settings import SettingsError
from localcloud.mocked_program import (
    STAND_IN_LAMBDA,
    SUBSCRIPTION_ID,
    MockCloud,
    ProgramRun,
    outbound_issuer,
    run_foundation,
    run_program,
)
from tests.infra.test_security import SECRET_BEARING_TYPES

FEDERATION = "aws:iam/outboundWebIdentityFederation:OutboundWebIdentityFederation"
GET_FEDERATION = "aws:iam/getOutboundWebIdentityFederation:getOutboundWebIdentityFederation"
CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"
FOUNDATION_STACK = "org/crosscloud-foundation/shared"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def readers() -> ProgramRun:
    return run_program({"awsReaders": True})


def _one(run: ProgramRun, token: str):
    (resource,) = run.of_type(token)
    return resource


def _reader_role(run: ProgramRun):
    return next(r for r in run.of_type("aws:iam/role:Role") if r.name == "aws-readers-role")


def test_off_by_default_nothing_is_created(default_run):
    assert not [r for r in default_run.resources if r.name.startswith("aws-readers")]
    assert not default_run.of_type("aws:lambda/function:Function")
    assert "awsReaderFunctionArn" not in default_run.outputs


def test_the_role_may_get_an_entra_token_and_write_its_own_logs_nothing_else(readers):
    role = _reader_role(readers)
    policies = [
        r
        for r in readers.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.inputs["role"] == role.inputs["name"]
    ]
    (policy,) = policies
    document = json.loads(policy.inputs["policy"])
    token, logs = document["Statement"]
    assert token == {
        "Sid": "TokenForEntraOnly",
        "Effect": "Allow",
        "Action": "sts:GetWebIdentityToken",
        "Resource": "*",
        "Condition": {
            "ForAllValues:StringEquals": {"sts:IdentityTokenAudience": [ENTRA_AUDIENCE]},
            "Null": {"sts:IdentityTokenAudience": "false"},
            "StringEquals": {"sts:SigningAlgorithm": "RS256"},
            "NumericLessThanEquals": {"sts:DurationSeconds": MAX_TOKEN_DURATION_SECONDS},
        },
    }
    function = _one(readers, "aws:lambda/function:Function")
    group = _one(readers, "aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["name"] == f"/aws/lambda/{function.inputs['name']}"
    assert logs["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert logs["Resource"] == (
        f"arn:aws:logs:eu-west-1:123456789012:log-group:{group.inputs['name']}:*"
    )
    # No managed policy, no attachment, no other inline policy.
    assert not readers.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert not role.inputs.get("managedPolicyArns")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]


def test_the_lambda_runs_the_built_package_without_a_public_url(readers):
    function = _one(readers, "aws:lambda/function:Function")
    assert function.inputs["runtime"] == "python3.12"
    assert function.inputs["handler"] == "lambda_function.handler"
    assert function.inputs["role"] == _reader_role(readers).state["arn"]
    expected_hash = base64.b64encode(bytes.fromhex(STAND_IN_LAMBDA.sha256)).decode()
    assert function.inputs["sourceCodeHash"] == expected_hash
    assert not readers.of_type("aws:lambda/functionUrl:FunctionUrl")
    assert not readers.of_type("aws:lambda/permission:Permission")
    variables = function.inputs["environment"]["variables"]
    identity = next(r for r in readers.resources if r.name == "aws-readers-identity")
    assert variables["CROSSCLOUD_READER_CLIENT_ID"] == identity.state["clientId"]
    assert variables["CROSSCLOUD_BLOB_CONTAINER"] == "mycontainer"
    assert int(variables["CROSSCLOUD_TOKEN_DURATION_SECONDS"]) <= MAX_TOKEN_DURATION_SECONDS


def test_the_credential_trusts_exactly_the_role_from_the_accounts_issuer(readers):
    credential = _one(readers, CREDENTIAL)
    federation = _one(readers, FEDERATION)
    identity = next(r for r in readers.resources if r.name == "aws-readers-identity")
    assert credential.inputs["issuer"] == federation.state["issuerIdentifier"]
    assert credential.inputs["subject"] == _reader_role(readers).state["arn"]
    assert credential.inputs["audiences"] == [ENTRA_AUDIENCE]
    assert credential.inputs["resourceName"] == identity.state["name"]
    assert identity.urn in credential.dependencies
    # No wildcard anywhere: Entra matches issuer and subject character for character.
    assert "*" not in credential.inputs["subject"] + credential.inputs["issuer"]


def test_the_reader_identity_reads_the_data_container_only(readers):
    identity = next(r for r in readers.resources if r.name == "aws-readers-identity")
    principal = identity.state["principalId"]
    grants = [
        r
        for r in readers.of_type("azure-native:authorization:RoleAssignment")
        if r.inputs["principalId"] == principal
    ]
    (grant,) = grants
    assert grant.inputs["roleDefinitionId"] == (
        f"/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleDefinitions/"
        f"{AzureRole.STORAGE_BLOB_DATA_READER.value}"
    )
    assert grant.inputs["principalType"] == "ServicePrincipal"
    data = next(r for r in readers.resources if r.name == "data-storage-account")
    assert grant.inputs["scope"] == f"{data.id}/blobServices/default/containers/mycontainer"


def test_the_container_grant_waits_for_the_container(readers):
    # ARM refuses a role assignment on a scope that does not exist yet; on a first `up` the
    # container is created in the same run, so the grant must depend on it.
    grant = next(r for r in readers.resources if r.name == "aws-readers-container-reader")
    container = next(
        r
        for r in readers.of_type("azure-native:storage:BlobContainer")
        if r.inputs["containerName"] == "mycontainer"
    )
    assert container.urn in grant.dependencies
    assert grant.inputs["scope"] == container.id


def test_the_lambda_waits_for_its_trust_and_permissions(readers):
    function = _one(readers, "aws:lambda/function:Function")
    needed = {
        _one(readers, CREDENTIAL).urn,
        _one(readers, "aws:cloudwatch/logGroup:LogGroup").urn,
        next(r for r in readers.resources if r.name == "aws-readers-container-reader").urn,
        next(r for r in readers.resources if r.name == "aws-readers-role-policy").urn,
    }
    assert needed <= set(function.dependencies)


def test_a_created_outbound_federation_is_protected(readers):
    assert _one(readers, FEDERATION).protect


def test_existing_reads_the_account_feature_and_creates_nothing_account_wide():
    run = run_program({"awsReaders": True, "awsOutboundFederation": "existing"})
    assert not run.of_type(FEDERATION)
    assert GET_FEDERATION in run.invokes
    assert _one(run, CREDENTIAL).inputs["issuer"] == outbound_issuer("123456789012")
    assert run.outputs["awsOutboundIssuer"] == outbound_issuer("123456789012")


def test_outputs_name_the_lambda_the_identity_and_the_issuer(readers):
    function = _one(readers, "aws:lambda/function:Function")
    identity = next(r for r in readers.resources if r.name == "aws-readers-identity")
    assert readers.outputs["awsReaderFunctionName"] == function.inputs["name"]
    assert readers.outputs["awsReaderFunctionArn"] == function.state["arn"]
    assert readers.outputs["awsReaderClientId"] == identity.state["clientId"]
    assert (
        readers.outputs["awsOutboundIssuer"] == _one(readers, FEDERATION).state["issuerIdentifier"]
    )


def test_arns_follow_the_partition():
    run = run_program({"awsReaders": True}, cloud=MockCloud(partition="aws-us-gov"))
    role = next(r for r in run.of_type("aws:iam/role:Role") if r.name == "aws-readers-role")
    policy = next(
        r
        for r in run.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.inputs["role"] == role.inputs["name"]
    )
    (_, logs) = json.loads(policy.inputs["policy"])["Statement"]
    assert logs["Resource"].startswith("arn:aws-us-gov:logs:")


def test_no_secret_bearing_resource(readers):
    assert not {r.type for r in readers.resources} & SECRET_BEARING_TYPES


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"awsReaders": "yes"}, "crosscloud:awsReaders"),
        (
            {"awsReaders": True, "awsOutboundFederation": "enable"},
            "crosscloud:awsOutboundFederation",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_key(config, key):
    with pytest.raises(SettingsError, match=key):
        run_program(config)


def test_with_a_foundation_the_environment_reads_the_foundations_issuer():
    foundation = run_foundation({"awsOutboundFederation": "create"})
    created = foundation.of_type(FEDERATION)
    assert created and all(r.protect for r in created)
    issuers = foundation.outputs["awsOutboundIssuers"]
    run = run_program(
        {"foundation": FOUNDATION_STACK, "awsReaders": True},
        stack_outputs={FOUNDATION_STACK: foundation.outputs},
    )
    assert not run.of_type(FEDERATION)
    assert _one(run, CREDENTIAL).inputs["issuer"] == issuers["123456789012"]


def test_with_a_foundation_without_issuers_the_environment_is_refused():
    foundation = run_foundation()
    assert "awsOutboundIssuers" not in foundation.outputs
    with pytest.raises(Exception, match="awsOutboundFederation"):
        run_program(
            {"foundation": FOUNDATION_STACK, "awsReaders": True},
            stack_outputs={FOUNDATION_STACK: foundation.outputs},
        )


def test_an_environment_may_not_choose_the_foundations_outbound_federation():
    with pytest.raises(SettingsError, match="crosscloud:awsOutboundFederation"):
        run_program({"foundation": FOUNDATION_STACK, "awsOutboundFederation": "create"})


def test_a_foundation_can_read_existing_outbound_federation_per_account():
    foundation = run_foundation({"awsOutboundFederation": "existing"})
    assert not foundation.of_type(FEDERATION)
    assert GET_FEDERATION in foundation.invokes
    assert foundation.outputs["awsOutboundIssuers"] == {
        "123456789012": outbound_issuer("123456789012")
    }


def test_a_foundation_leaves_outbound_federation_alone_by_default():
    foundation = run_foundation()
    assert not foundation.of_type(FEDERATION)
    assert GET_FEDERATION not in foundation.invokes


def test_a_foundation_refuses_an_unknown_outbound_federation_choice_naming_the_key():
    with pytest.raises(SettingsError, match="crosscloud:awsOutboundFederation"):
        run_foundation({"awsOutboundFederation": "on"})


def test_docs_say_create_fails_on_an_enabled_account_and_name_the_import():
    # The provider pulumi_aws 7.51 bundles has no adoption: its Create calls
    # EnableOutboundWebIdentityFederation, which refuses an enabled account (terraform-provider-aws
    # internal/service/iam/outbound_web_identity_federation.go). That version's schema is
    # `issuer_identifier` only and it imports by account id; the adopting one had
    # `jwt_vending_enabled`. If the SDK changes shape, this claim must be checked again.
    sdk = inspect.getsource(pulumi_aws.iam.OutboundWebIdentityFederation)
    assert "jwt_vending_enabled" not in sdk
    assert f"pulumi import {FEDERATION} example 123456789012" in sdk
    doc = (REPO / "docs" / "aws-readers.md").read_text()
    prose = " ".join(doc.split())
    assert "adopts" not in prose.lower()
    assert "does not adopt it" in prose
    assert "the account already has the feature, `create` fails" in prose
    assert f"pulumi import {FEDERATION} aws-readers-outbound-federation <account-id>" in prose
    assert "does NOT adopt" in inspect.getsource(aws_readers)
