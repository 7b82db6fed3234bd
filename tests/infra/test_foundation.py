"""The foundation project (foundation/__main__.py) under mocks, and its configuration rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from components.foundation_settings import (
    AwsAccount,
    FoundationSettings,
    parse_foundation_settings,
)
from components.settings import SettingsError
from components.shared_federation import OUTPUTS
from localcloud.mocked_program import (
    AWS_ACCOUNT_ID,
    DEPLOYER_OBJECT_ID,
    TENANT_ID,
    ProgramRun,
    run_foundation,
)

FOUNDATION = Path(__file__).resolve().parents[2] / "foundation"
APPLICATION = "azuread:index/application:Application"
SERVICE_PRINCIPAL = "azuread:index/servicePrincipal:ServicePrincipal"
OIDC_PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
AWS_PROVIDER = "pulumi:providers:aws"
ISSUER = f"https://sts.windows.net/{TENANT_ID}/"


def example_config() -> dict:
    """The `crosscloud:*` values of the example stack foundation/Pulumi.shared.yaml."""
    stack = yaml.safe_load((FOUNDATION / "Pulumi.shared.yaml").read_text())
    return {key.split(":", 1)[1]: value for key, value in stack["config"].items()}


@pytest.fixture(scope="module")
def example_run() -> ProgramRun:
    return run_foundation(example_config())


@pytest.fixture(scope="module")
def ambient_run() -> ProgramRun:
    return run_foundation({"awsAccounts": []})


def test_the_project_uses_the_repository_virtualenv():
    project = yaml.safe_load((FOUNDATION / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == "../.venv"


def test_example_stack_creates_one_app_one_sp_and_a_provider_per_listed_account(example_run):
    accounts = [a["accountId"] for a in example_config()["awsAccounts"]]
    assert len(accounts) == 2
    assert len(example_run.of_type(APPLICATION)) == 1
    assert len(example_run.of_type(SERVICE_PRINCIPAL)) == 1
    providers = example_run.of_type(OIDC_PROVIDER)
    assert len(providers) == len(accounts)
    # Each provider is created through its own account's explicit AWS provider (the mocks put a
    # resource in the account of the role its provider assumes, else the ambient account).
    assert sorted(p.state["arn"].split(":")[4] for p in providers) == sorted(accounts)
    for provider in providers:
        assert provider.inputs["url"] == ISSUER
        assert provider.inputs["clientIdLists"] == [example_run.outputs["audience"]]
        assert not provider.inputs.get("thumbprintLists")


def test_each_account_provider_assumes_its_own_deployment_role(example_run):
    by_name = {p.name: p for p in example_run.of_type(AWS_PROVIDER)}
    for account in example_config()["awsAccounts"]:
        provider = by_name[f"aws-{account['accountId']}"]
        roles = json.loads(provider.inputs["assumeRoles"])
        assert [r["roleArn"] for r in roles] == [account["roleArn"]]
        assert json.loads(provider.inputs["allowedAccountIds"]) == [account["accountId"]]


def test_example_stack_exports_exactly_the_six_outputs(example_run):
    outputs = example_run.outputs
    assert set(outputs) == set(OUTPUTS)
    (app,) = example_run.of_type(APPLICATION)
    (sp,) = example_run.of_type(SERVICE_PRINCIPAL)
    assert outputs["tenantId"] == TENANT_ID
    assert outputs["audience"] == f"api://{TENANT_ID}/AWS-Federation-App"
    assert outputs["federationAppClientId"] == app.state["clientId"]
    assert outputs["appRoleId"] == app.inputs["appRoles"][0]["id"]
    assert outputs["servicePrincipalObjectId"] == sp.state["objectId"]
    arns = {
        p.state["arn"].split(":")[4]: p.state["arn"] for p in example_run.of_type(OIDC_PROVIDER)
    }
    assert outputs["awsOidcProviderArns"] == arns


def test_the_app_is_the_hardened_federation_app(example_run):
    (app,) = example_run.of_type(APPLICATION)
    (sp,) = example_run.of_type(SERVICE_PRINCIPAL)
    (role,) = app.inputs["appRoles"]
    assert role["value"] == "AssumeAWSRole"
    assert role["allowedMemberTypes"] == ["Application"]
    assert app.inputs["api"].get("requestedAccessTokenVersion") == 1
    assert sp.inputs["appRoleAssignmentRequired"] is True
    assert app.inputs["owners"] == [DEPLOYER_OBJECT_ID]


def test_the_app_role_id_is_stable_per_stack():
    first = run_foundation({"awsAccounts": []}).outputs["appRoleId"]
    assert run_foundation({"awsAccounts": []}).outputs["appRoleId"] == first
    assert run_foundation({"awsAccounts": []}, stack="other").outputs["appRoleId"] != first


def test_an_app_role_id_from_config_is_kept():
    kept = "0f0e0d0c-0b0a-4909-8807-060504030201"
    run = run_foundation({"awsAccounts": [], "appRoleId": kept})
    (app,) = run.of_type(APPLICATION)
    assert [role["id"] for role in app.inputs["appRoles"]] == [kept]
    assert run.outputs["appRoleId"] == kept


def test_no_accounts_means_one_provider_in_the_ambient_account(ambient_run):
    (provider,) = ambient_run.of_type(OIDC_PROVIDER)
    assert provider.state["arn"].split(":")[4] == AWS_ACCOUNT_ID
    assert ambient_run.outputs["awsOidcProviderArns"] == {AWS_ACCOUNT_ID: provider.state["arn"]}


def test_foundation_creates_no_role_bucket_or_app(example_run):
    kinds = {r.type for r in example_run.resources}
    assert not {t for t in kinds if t.startswith(("azure-native:", "aws:s3", "aws:iam/role"))}


# --- configuration ---------------------------------------------------------------------------


def test_example_config_parses():
    settings = parse_foundation_settings(example_config())
    assert settings.aws_accounts == (
        AwsAccount("111111111111", "arn:aws:iam::111111111111:role/crosscloud-foundation-deployer"),
        AwsAccount("222222222222", "arn:aws:iam::222222222222:role/crosscloud-foundation-deployer"),
    )
    assert parse_foundation_settings({}) == FoundationSettings()


ROLE = "arn:aws:iam::111111111111:role/deployer"


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("awsAccounts", "not json", "structured"),
        ("awsAccounts", '{"accountId": "111111111111"}', "a list of"),
        ("awsAccounts", '[{"accountId": "1111", "roleArn": "' + ROLE + '"}]', "12 digits"),
        ("awsAccounts", '[{"accountId": "111111111111"}]', "roleArn"),
        ("awsAccounts", '[{"accountId": "111111111111", "roleArn": "deployer"}]', "roleArn"),
        (
            "awsAccounts",
            '[{"accountId": "222222222222", "roleArn": "' + ROLE + '"}]',
            "a role in account 222222222222",
        ),
        (
            "awsAccounts",
            json.dumps([{"accountId": "111111111111", "roleArn": ROLE}] * 2),
            "only once",
        ),
        ("audience", "api://x/", "trailing slash"),
        ("appDisplayName", "-x", "starting with a letter or digit"),
        ("awsRegion", "europe", "AWS region"),
        ("tags", '["a"]', "map of tag names"),
        ("appRoleId", "not-a-guid", "GUID"),
    ],
)
def test_each_bad_value_is_refused_naming_the_key(key, value, rule):
    with pytest.raises(SettingsError) as error:
        parse_foundation_settings({key: value})
    message = str(error.value)
    assert f"crosscloud:{key}" in message
    assert rule in message


def test_environment_keys_are_refused_by_the_foundation():
    with pytest.raises(SettingsError, match=r"crosscloud:bucketName is not a setting of the found"):
        parse_foundation_settings({"bucketName": "b"})


def test_bad_config_fails_the_foundation_program_before_any_resource():
    with pytest.raises(SettingsError, match="crosscloud:awsAccounts"):
        run_foundation({"awsAccounts": '[{"accountId": "1"}]'})
