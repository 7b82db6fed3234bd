"""Environment stacks (`crosscloud:foundation`) and the existing-provider option, under mocks.

The foundation's outputs come from running foundation/__main__.py under the same mocks; the
environment's StackReference is answered with them, as the Pulumi service would.
"""

from __future__ import annotations

import json

import pytest

from components.oidc_provider import ExistingProviderError
from components.settings import SettingsError
from components.shared_federation import FoundationError
from localcloud.mocked_program import TENANT_ID, ProgramRun, run_foundation, run_program
from tests.infra.test_security import principal_ids

FOUNDATION_STACK = "acme/crosscloud-foundation/shared"
DEV_ACCOUNT = "210987654321"
PROD_ACCOUNT = "345678901234"
KEY_PREFIX = f"sts.windows.net/{TENANT_ID}/"
APP_ROLE_ASSIGNMENT = "azuread:index/appRoleAssignment:AppRoleAssignment"
NOT_IN_AN_ENVIRONMENT = (
    "azuread:index/application:Application",
    "azuread:index/applicationIdentifierUri:ApplicationIdentifierUri",
    "azuread:index/servicePrincipal:ServicePrincipal",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
)


@pytest.fixture(scope="module")
def foundation() -> ProgramRun:
    accounts = [
        {"accountId": a, "roleArn": f"arn:aws:iam::{a}:role/foundation-deployer"}
        for a in (DEV_ACCOUNT, PROD_ACCOUNT)
    ]
    return run_foundation({"awsAccounts": accounts})


def environment(foundation: ProgramRun, stack: str, account: str, **config) -> ProgramRun:
    return run_program(
        {"foundation": FOUNDATION_STACK, **config},
        stack=stack,
        aws_account_id=account,
        stack_outputs={FOUNDATION_STACK: foundation.outputs},
    )


@pytest.fixture(scope="module")
def dev(foundation) -> ProgramRun:
    return environment(foundation, "dev", DEV_ACCOUNT)


@pytest.fixture(scope="module")
def prod(foundation) -> ProgramRun:
    return environment(foundation, "prod", PROD_ACCOUNT)


def trust(run: ProgramRun) -> dict:
    (role,) = run.of_type("aws:iam/role:Role")
    return json.loads(role.inputs["assumeRolePolicy"])


def federation_side(run: ProgramRun, types: tuple[str, ...]) -> list:
    """Resources of `types`, the environment's own reader API (tests/infra/test_reader_api.py)
    left out: every stack has its own front door, foundation or not."""
    return [r for r in run.resources if r.type in types and not r.name.startswith("reader-api")]


def test_an_environment_creates_no_federation_application_service_principal_or_provider(dev, prod):
    for run in (dev, prod):
        assert [r.name for r in federation_side(run, NOT_IN_AN_ENVIRONMENT)] == []


def test_it_assigns_the_foundation_app_role_to_each_of_its_identities(foundation, dev):
    assignments = federation_side(dev, (APP_ROLE_ASSIGNMENT,))
    assert {a.inputs["principalObjectId"] for a in assignments} == set(principal_ids(dev).values())
    for assignment in assignments:
        assert assignment.inputs["appRoleId"] == foundation.outputs["appRoleId"]
        assert (
            assignment.inputs["resourceObjectId"]
            == (foundation.outputs["servicePrincipalObjectId"])
        )


def test_its_role_trusts_exactly_the_foundation_provider_of_its_account(foundation, dev, prod):
    arns = foundation.outputs["awsOidcProviderArns"]
    for run, account in ((dev, DEV_ACCOUNT), (prod, PROD_ACCOUNT)):
        (statement,) = trust(run)["Statement"]
        assert statement["Principal"] == {"Federated": arns[account]}
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Condition"] == {
            "StringEquals": {
                f"{KEY_PREFIX}:aud": foundation.outputs["audience"],
                f"{KEY_PREFIX}:sub": sorted(principal_ids(run).values()),
            }
        }


def test_sub_separates_environments_that_share_the_audience(foundation, dev, prod):
    """One audience for all: Entra lets any assigned identity get a token AWS's provider
    accepts, so only `sub` keeps dev out of prod. Each role trusts its own ids and no other's."""
    dev_ids, prod_ids = set(principal_ids(dev).values()), set(principal_ids(prod).values())
    assert dev_ids and prod_ids and not dev_ids & prod_ids
    dev_sub = set(trust(dev)["Statement"][0]["Condition"]["StringEquals"][f"{KEY_PREFIX}:sub"])
    prod_sub = set(trust(prod)["Statement"][0]["Condition"]["StringEquals"][f"{KEY_PREFIX}:sub"])
    assert dev_sub == dev_ids and prod_sub == prod_ids
    aud = f"{KEY_PREFIX}:aud"
    assert (
        trust(dev)["Statement"][0]["Condition"]["StringEquals"][aud]
        == trust(prod)["Statement"][0]["Condition"]["StringEquals"][aud]
    )


def test_apps_use_the_foundation_audience(foundation, dev):
    for app in dev.of_type("azure-native:web:WebApp"):
        settings = {s["name"]: s["value"] for s in app.inputs["siteConfig"]["appSettings"]}
        assert settings["CROSSCLOUD_AUDIENCE"] == foundation.outputs["audience"]
    assert dev.outputs["audience"] == foundation.outputs["audience"]
    assert dev.outputs["federationAppClientId"] == foundation.outputs["federationAppClientId"]


def test_an_account_without_a_foundation_provider_fails_naming_account_and_stack(foundation):
    with pytest.raises(FoundationError) as error:
        environment(foundation, "test", "333333333333")
    message = str(error.value)
    assert "333333333333" in message and FOUNDATION_STACK in message
    assert "crosscloud:awsAccounts" in message  # what to change


def test_a_foundation_of_another_tenant_is_refused(foundation):
    outputs = {**foundation.outputs, "tenantId": "00000000-0000-4000-8000-000000000000"}
    with pytest.raises(FoundationError, match=f"this stack deploys to tenant {TENANT_ID}"):
        run_program(
            {"foundation": FOUNDATION_STACK},
            aws_account_id=DEV_ACCOUNT,
            stack_outputs={FOUNDATION_STACK: outputs},
        )


def test_a_foundation_that_was_never_deployed_is_refused(foundation):
    with pytest.raises(FoundationError, match="deploy the foundation") as raised:
        run_program(
            {"foundation": FOUNDATION_STACK},
            aws_account_id=DEV_ACCOUNT,
            stack_outputs={FOUNDATION_STACK: {}},
        )
    # A local backend's stacks are all in the literal organization `organization`.
    assert "organization/<project>/<stack>" in str(raised.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("appDisplayName", "My-App"),
        ("audience", "appId"),
        (
            "awsOidcProviderArn",
            f"arn:aws:iam::{DEV_ACCOUNT}:oidc-provider/sts.windows.net/{TENANT_ID}/",
        ),
    ],
)
def test_foundation_owned_keys_next_to_a_foundation_are_refused_naming_both(key, value):
    with pytest.raises(SettingsError) as error:
        run_program({"foundation": FOUNDATION_STACK, key: value})
    assert f"crosscloud:{key} and crosscloud:foundation are both set" in str(error.value)


@pytest.mark.parametrize(
    "value", ["shared", "acme/shared", "acme/x/y/z", "acme/x y/shared", "acme/x/shared\n"]
)
def test_foundation_must_be_a_fully_qualified_stack_name(value):
    with pytest.raises(SettingsError, match=r"crosscloud:foundation = .*<organization>/<project>"):
        run_program({"foundation": value})


# --- crosscloud:awsOidcProviderArn: a provider made elsewhere --------------------------------

EXISTING = f"arn:aws:iam::123456789012:oidc-provider/sts.windows.net/{TENANT_ID}/"
AUDIENCE = f"api://{TENANT_ID}/AWS-Federation-App"


def standalone_with(provider: dict, **config) -> ProgramRun:
    return run_program(
        {"awsOidcProviderArn": EXISTING, **config}, oidc_providers={EXISTING: provider}
    )


def test_an_existing_provider_is_trusted_and_none_is_created():
    # IAM reports the URL without the scheme.
    run = standalone_with({"url": f"sts.windows.net/{TENANT_ID}/", "clientIdLists": [AUDIENCE]})
    assert run.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
    (statement,) = trust(run)["Statement"]
    assert statement["Principal"] == {"Federated": EXISTING}
    assert statement["Condition"]["StringEquals"][f"{KEY_PREFIX}:aud"] == AUDIENCE
    # Still a standalone stack: its own application.
    assert len(federation_side(run, ("azuread:index/application:Application",))) == 1


def test_an_existing_provider_for_another_issuer_is_refused_before_the_role():
    other = "https://sts.windows.net/00000000-0000-4000-8000-000000000000/"
    with pytest.raises(ExistingProviderError, match="crosscloud:awsOidcProviderArn") as error:
        standalone_with({"url": other, "clientIdLists": [AUDIENCE]})
    assert f"iss = 'https://sts.windows.net/{TENANT_ID}/'" in str(error.value)


def test_an_existing_provider_without_the_audience_is_refused_saying_what_to_add():
    with pytest.raises(ExistingProviderError, match="lack the audience") as error:
        standalone_with({"url": f"https://sts.windows.net/{TENANT_ID}/", "clientIdLists": ["x"]})
    assert f"add-client-id-to-open-id-connect-provider --client-id {AUDIENCE}" in str(error.value)


def test_the_audience_check_waits_for_an_app_id_audience():
    # api://{appId} is known once the app exists; the mocks create it, so the check runs and
    # refuses a provider that lists only the tenant audience.
    with pytest.raises(ExistingProviderError, match="lack the audience 'api://"):
        standalone_with(
            {"url": f"sts.windows.net/{TENANT_ID}/", "clientIdLists": [AUDIENCE]},
            audience="appId",
        )


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
        f"arn:aws:iam::1234:oidc-provider/sts.windows.net/{TENANT_ID}/",
        "not-an-arn",
    ],
)
def test_the_existing_provider_arn_must_be_an_entra_issuer_provider(value):
    with pytest.raises(SettingsError, match=r"crosscloud:awsOidcProviderArn = .*oidc-provider"):
        run_program({"awsOidcProviderArn": value})
