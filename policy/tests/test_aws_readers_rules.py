"""web-identity-token-audience and aws-reader-identity-reader-only: on hand-made resources and on
the program's own (run under mocks with crosscloud:awsReaders), broken copies included."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from components.aws_readers import execution_role_policy, lambda_role_trust_policy
from localcloud.mocked_program import run_program
from policy.rules import common
from policy.rules.aws_reader_identity_reader_only import (
    FEDERATED_CREDENTIAL,
    ROLE_ASSIGNMENT,
    STORAGE_BLOB_DATA_READER,
    USER_ASSIGNED_IDENTITY,
)
from policy.tests.engine import Resource, evaluate, policies_violated
from policy.tests.test_program import as_resources

OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
ACCOUNT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/data"
CONTAINER = f"{ACCOUNT}/blobServices/default/containers/mycontainer"
PINNED = {
    "ForAllValues:StringEquals": {"sts:IdentityTokenAudience": ["api://AzureADTokenExchange"]},
    "Null": {"sts:IdentityTokenAudience": "false"},
}


LAMBDA_ROLE = Resource(
    common.IAM_ROLE,
    {"name": "r", "assumeRolePolicy": lambda_role_trust_policy()},
    name="lambda-role",
)


def _role_policy(statement: dict[str, Any]) -> list[Resource]:
    document = {"Version": "2012-10-17", "Statement": [statement]}
    policy = Resource(common.IAM_ROLE_POLICY, {"role": "r", "policy": json.dumps(document)})
    return [LAMBDA_ROLE, policy]


def _token_statement(**condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Action": "sts:GetWebIdentityToken",
        "Resource": "*",
    }
    if condition:
        statement["Condition"] = condition
    return statement


def test_the_programs_execution_role_policy_passes():
    policy = execution_role_policy("aws", "eu-west-1", "123456789012", "fn")
    resource = Resource(common.IAM_ROLE_POLICY, {"role": "r", "policy": policy})
    assert evaluate([LAMBDA_ROLE, resource]) == []


@pytest.mark.parametrize(
    "statement",
    [
        _token_statement(),
        _token_statement(StringEquals={"sts:SigningAlgorithm": "RS256"}),
        _token_statement(**{"ForAnyValue:StringEquals": {"sts:IdentityTokenAudience": ["a"]}}),
        _token_statement(StringLike={"sts:IdentityTokenAudience": "api://*"}),
        _token_statement(**{"ForAllValues:StringEquals": {"sts:IdentityTokenAudience": ["*"]}}),
        # A multivalued key needs a set operator (IAM User Guide): plain StringEquals is refused,
        # even with the Null check.
        _token_statement(
            StringEquals={"sts:IdentityTokenAudience": "api://AzureADTokenExchange"},
            Null={"sts:IdentityTokenAudience": "false"},
        ),
        # ForAllValues alone is also true for a request with no audience.
        _token_statement(**{"ForAllValues:StringEquals": PINNED["ForAllValues:StringEquals"]}),
        _token_statement(**{**PINNED, "Null": {"sts:IdentityTokenAudience": "true"}}),
        {"Effect": "Allow", "Action": "sts:*", "Resource": "*"},
        {"Effect": "Allow", "Action": ["s3:GetObject", "*"], "Resource": "*"},
    ],
    ids=[
        "none",
        "algorithm only",
        "ForAnyValue",
        "StringLike",
        "wildcard",
        "plain StringEquals",
        "no Null check",
        "Null true",
        "sts:*",
        "*",
    ],
)
def test_token_grants_without_a_named_audience_are_refused(statement):
    assert "web-identity-token-audience" in policies_violated(_role_policy(statement))


@pytest.mark.parametrize("null", ["false", False], ids=["string", "bool"])
def test_a_set_operator_with_a_null_check_passes(null):
    statement = _token_statement(**{**PINNED, "Null": {"sts:IdentityTokenAudience": null}})
    assert "web-identity-token-audience" not in policies_violated(_role_policy(statement))


def test_other_grants_are_not_this_rules_business():
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    assert "web-identity-token-audience" not in policies_violated(_role_policy(statement))


def test_roles_the_lambda_service_does_not_assume_are_not_this_rules_business():
    other = Resource(common.IAM_ROLE, {"name": "r", "assumeRolePolicy": "{}"}, name="other")
    (_, policy) = _role_policy(_token_statement())
    assert "web-identity-token-audience" not in policies_violated([other, policy])


def _identity_with_credential(role_id: str, scope: str = CONTAINER) -> list[Resource]:
    identity = Resource(
        USER_ASSIGNED_IDENTITY,
        {"resourceName": "id-readers"},
        name="id",
        outputs={"resourceName": "id-readers", "principalId": "p-1", "clientId": "c-1"},
    )
    credential = Resource(
        FEDERATED_CREDENTIAL,
        {"resourceName": "id-readers", "issuer": "https://x", "subject": "arn", "audiences": []},
        name="fic",
    )
    assignment = Resource(
        ROLE_ASSIGNMENT,
        {
            "principalId": "p-1",
            "principalType": "ServicePrincipal",
            "roleDefinitionId": f"/subscriptions/s/providers/Microsoft.Authorization/"
            f"roleDefinitions/{role_id}",
            "scope": scope,
        },
        name="grant",
    )
    return [identity, credential, assignment]


def test_a_federated_identity_with_reader_passes():
    assert evaluate(_identity_with_credential(STORAGE_BLOB_DATA_READER)) == []


@pytest.mark.parametrize("role_id", [CONTRIBUTOR, OWNER])
def test_a_federated_identity_with_more_than_reader_is_refused(role_id):
    found = evaluate(_identity_with_credential(role_id))
    assert [v.policy for v in found] == ["aws-reader-identity-reader-only"]
    assert role_id in found[0].message


@pytest.mark.parametrize(
    "scope",
    [
        ACCOUNT,
        f"{ACCOUNT}/blobServices/default",
        "/subscriptions/s/resourceGroups/rg",
        "/subscriptions/s",
        f"{CONTAINER}/extra",
    ],
    ids=["account", "blob service", "resource group", "subscription", "below a container"],
)
def test_a_federated_identity_granted_above_a_container_is_refused(scope):
    found = evaluate(_identity_with_credential(STORAGE_BLOB_DATA_READER, scope))
    assert [v.policy for v in found] == ["aws-reader-identity-reader-only"]
    assert "one blob container only" in found[0].message and scope in found[0].message


def test_an_identity_without_a_federated_credential_is_not_this_rules_business():
    resources = _identity_with_credential(OWNER)
    del resources[1]
    assert "aws-reader-identity-reader-only" not in policies_violated(resources)


@pytest.fixture(scope="module")
def program() -> list[Resource]:
    return as_resources(run_program({"awsReaders": True}))


def test_the_program_with_aws_readers_passes_every_rule(program):
    types = {r.type for r in program}
    assert {FEDERATED_CREDENTIAL, USER_ASSIGNED_IDENTITY, ROLE_ASSIGNMENT} <= types
    assert evaluate(program) == []


def test_the_program_broken_each_way_is_caught(program):
    broken = copy.deepcopy(program)
    policy = next(
        r for r in broken if r.type == common.IAM_ROLE_POLICY and r.name.startswith("aws-readers")
    )
    document = json.loads(policy.props["policy"])
    del document["Statement"][0]["Condition"]["ForAllValues:StringEquals"]
    broken[broken.index(policy)] = Resource(
        policy.type,
        {**policy.props, "policy": json.dumps(document)},
        name=policy.name,
        urn=policy.urn,
    )
    assert policies_violated(broken) == {"web-identity-token-audience"}

    broken = copy.deepcopy(program)
    policy = next(
        r for r in broken if r.type == common.IAM_ROLE_POLICY and r.name.startswith("aws-readers")
    )
    document = json.loads(policy.props["policy"])
    del document["Statement"][0]["Condition"]["Null"]
    broken[broken.index(policy)] = Resource(
        policy.type,
        {**policy.props, "policy": json.dumps(document)},
        name=policy.name,
        urn=policy.urn,
    )
    assert policies_violated(broken) == {"web-identity-token-audience"}

    broken = copy.deepcopy(program)
    grant = next(r for r in broken if r.name == "aws-readers-container-reader")
    account = grant.props["scope"].split("/blobServices/")[0]
    props = {**grant.props, "scope": account}
    broken[broken.index(grant)] = Resource(grant.type, props, name=grant.name, urn=grant.urn)
    assert policies_violated(broken) == {"aws-reader-identity-reader-only"}

    broken = copy.deepcopy(program)
    grant = next(r for r in broken if r.name == "aws-readers-container-reader")
    props = {
        **grant.props,
        "roleDefinitionId": grant.props["roleDefinitionId"].replace(
            STORAGE_BLOB_DATA_READER, CONTRIBUTOR
        ),
    }
    broken[broken.index(grant)] = Resource(grant.type, props, name=grant.name, urn=grant.urn)
    assert policies_violated(broken) == {"aws-reader-identity-reader-only"}
