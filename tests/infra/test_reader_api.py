"""The reader API (issue 16): the Entra app whose tokens open the function apps, under mocks.

Security properties over every resource of each type: assignment required, a role for
applications and users, the Azure CLI pre-authorized for a delegated scope, kept apart from the
federation app, every app told who may call, and config validation naming its keys.
"""

from __future__ import annotations

import pytest

from components.reader_api import AZURE_CLI_CLIENT_ID, CALLER_ROLE_VALUE
from components.settings import SettingsError, parse_settings
from localcloud.mocked_program import DEPLOYER_OBJECT_ID, TENANT_ID, ProgramRun, run_program
from tests.infra.test_environment import DEV_ACCOUNT, PROD_ACCOUNT, environment, foundation  # noqa: F401

APPLICATION = "azuread:index/application:Application"
SERVICE_PRINCIPAL = "azuread:index/servicePrincipal:ServicePrincipal"
ASSIGNMENT = "azuread:index/appRoleAssignment:AppRoleAssignment"
PRE_AUTHORIZED = "azuread:index/applicationPreAuthorized:ApplicationPreAuthorized"
WEB_APP = "azure-native:web:WebApp"
CALLERS = (
    "2b3c4d5e-6f70-4182-93a4-b5c6d7e8f901",  # a user
    "3c4d5e6f-7081-4293-a4b5-c6d7e8f9a012",  # a group
)
CALLER_SETTINGS = (
    "CROSSCLOUD_TENANT_ID",
    "CROSSCLOUD_CALLER_AUDIENCE",
    "CROSSCLOUD_CALLER_CLIENT_ID",
    "CROSSCLOUD_CALLER_ROLE",
)


@pytest.fixture(scope="module")
def with_callers() -> ProgramRun:
    return run_program({"callerPrincipalIds": list(CALLERS)})


@pytest.fixture(scope="module")
def without_deployer() -> ProgramRun:
    return run_program({"deployerIsCaller": "false"})


def reader_app(run: ProgramRun):
    return run.named("reader-api-app")


def reader_assignments(run: ProgramRun) -> list:
    sp = run.named("reader-api-sp")
    return [
        a for a in run.of_type(ASSIGNMENT) if a.inputs["resourceObjectId"] == sp.state["objectId"]
    ]


def app_settings(app) -> dict[str, str]:
    return {s["name"]: s["value"] for s in app.inputs["siteConfig"]["appSettings"]}


def test_the_reader_api_requires_assignment(any_run):
    assert any_run.named("reader-api-sp").inputs["appRoleAssignmentRequired"] is True
    # ... and so does every service principal of the stack.
    for sp in any_run.of_type(SERVICE_PRINCIPAL):
        assert sp.inputs["appRoleAssignmentRequired"] is True, sp.name


def test_its_role_is_for_applications_and_users_and_its_tokens_are_v1(any_run):
    app = reader_app(any_run)
    (role,) = app.inputs["appRoles"]
    assert role["value"] == CALLER_ROLE_VALUE == "CrossCloud.Read"
    assert sorted(role["allowedMemberTypes"]) == ["Application", "User"]
    assert role["enabled"] is True
    assert app.inputs["api"]["requestedAccessTokenVersion"] == 1
    assert app.inputs["signInAudience"] == "AzureADMyOrg"


def test_its_identifier_uri_contains_the_tenant_id(default_run):
    # Tenants with the 2025 URI policy accept only URIs holding a verified domain, the tenant id
    # or the app id (docs/design.md "Audience and token version").
    app = reader_app(default_run)
    uri = f"api://{TENANT_ID}/crosscloud-dev-reader-api"
    assert app.inputs["identifierUris"] == [uri]
    assert default_run.outputs["callerAudience"] == uri
    assert default_run.outputs["callerClientId"] == app.state["clientId"]


def test_the_azure_cli_is_pre_authorized_for_an_admin_consent_scope(any_run):
    app = reader_app(any_run)
    (scope,) = app.inputs["api"]["oauth2PermissionScopes"]
    assert scope["type"] == "Admin" and scope["enabled"] is True
    assert scope["value"] != CALLER_ROLE_VALUE  # roles and scopes share one namespace
    (pre,) = any_run.of_type(PRE_AUTHORIZED)
    assert pre.inputs["applicationId"] == app.id
    assert pre.inputs["authorizedClientId"] == AZURE_CLI_CLIENT_ID
    assert AZURE_CLI_CLIENT_ID == "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
    assert pre.inputs["permissionIds"] == [scope["id"]]


def test_it_is_a_separate_app_from_the_federation_app(any_run):
    federation, reader = any_run.named("federation-app"), reader_app(any_run)
    assert federation.id != reader.id
    assert any_run.outputs["callerAudience"] != any_run.outputs["audience"]
    assert any_run.outputs["callerClientId"] != any_run.outputs["federationAppClientId"]
    # No caller is given the AWS role, and the apps' identities are not callers.
    federation_sp = any_run.named("federation-sp").state["objectId"]
    for assignment in reader_assignments(any_run):
        assert assignment.inputs["resourceObjectId"] != federation_sp
    aws_role_holders = {
        a.inputs["principalObjectId"]
        for a in any_run.of_type(ASSIGNMENT)
        if a.inputs["resourceObjectId"] == federation_sp
    }
    callers = {a.inputs["principalObjectId"] for a in reader_assignments(any_run)}
    assert not aws_role_holders & callers
    # Only the Azure CLI is pre-authorized, and only on the reader API.
    assert "api" not in federation.inputs or not federation.inputs["api"].get(
        "oauth2PermissionScopes"
    )


def test_callers_and_the_deployer_get_the_role(with_callers):
    role_id = reader_app(with_callers).inputs["appRoles"][0]["id"]
    assignments = reader_assignments(with_callers)
    assert {a.inputs["principalObjectId"] for a in assignments} == {*CALLERS, DEPLOYER_OBJECT_ID}
    assert all(a.inputs["appRoleId"] == role_id for a in assignments)


def test_a_deployer_listed_as_a_caller_is_assigned_once(with_callers):
    # Graph refuses a second assignment of one role to one principal on one resource
    # ("EntitlementGrant entry already exists", microsoftgraph/msgraph-bicep-types#161).
    run = run_program({"callerPrincipalIds": [CALLERS[0], DEPLOYER_OBJECT_ID]})
    principals = [a.inputs["principalObjectId"] for a in reader_assignments(run)]
    assert sorted(principals) == sorted([CALLERS[0], DEPLOYER_OBJECT_ID])
    # Resource names carry the object id once, and never repeat "caller-".
    for resource_run in (run, with_callers):
        names = [a.name for a in reader_assignments(resource_run)]
        assert all("caller-caller-" not in name for name in names), names
    names = {a.name for a in reader_assignments(with_callers)}
    assert names == {*(f"reader-api-caller-{c}" for c in CALLERS), "reader-api-caller-deployer"}


def test_the_deployer_is_no_caller_when_the_config_says_so(without_deployer):
    assert reader_assignments(without_deployer) == []


def test_every_app_is_told_who_may_call(any_run):
    apps = any_run.of_type(WEB_APP)
    assert len(apps) == 2
    for app in apps:
        settings = app_settings(app)
        assert settings["CROSSCLOUD_TENANT_ID"] == TENANT_ID, app.name
        assert settings["CROSSCLOUD_CALLER_AUDIENCE"] == any_run.outputs["callerAudience"]
        assert settings["CROSSCLOUD_CALLER_CLIENT_ID"] == any_run.outputs["callerClientId"]
        assert settings["CROSSCLOUD_CALLER_ROLE"] == CALLER_ROLE_VALUE


def test_the_display_name_is_configurable(default_run):
    run = run_program({"callerAppDisplayName": "Team Reader API"})
    app = reader_app(run)
    assert app.inputs["displayName"] == "Team Reader API"
    assert app.inputs["identifierUris"] == [f"api://{TENANT_ID}/Team-Reader-API"]
    assert reader_app(default_run).inputs["displayName"] == "crosscloud-dev-reader-api"


def test_each_environment_of_a_foundation_has_its_own_reader_api(foundation):  # noqa: F811
    dev = environment(foundation, "dev", DEV_ACCOUNT)
    prod = environment(foundation, "prod", PROD_ACCOUNT)
    assert dev.outputs["callerAudience"] != prod.outputs["callerAudience"]
    for run in (dev, prod):
        assert run.named("reader-api-sp").inputs["appRoleAssignmentRequired"] is True
        assert run.outputs["callerAudience"] != run.outputs["audience"]
        for app in run.of_type(WEB_APP):
            assert set(CALLER_SETTINGS) <= set(app_settings(app))


@pytest.mark.parametrize(
    ("config", "key", "rule"),
    [
        ({"callerPrincipalIds": ["not-a-guid"]}, "callerPrincipalIds", "user, group"),
        ({"callerPrincipalIds": [CALLERS[0], CALLERS[0]]}, "callerPrincipalIds", "only once"),
        ({"callerPrincipalIds": "{"}, "callerPrincipalIds", "structured"),
        ({"callerPrincipalIds": {"a": CALLERS[0]}}, "callerPrincipalIds", "a list"),
        ({"deployerIsCaller": "yes"}, "deployerIsCaller", "true or false"),
        ({"callerAppDisplayName": "-bad/name"}, "callerAppDisplayName", "1-120 characters"),
    ],
)
def test_bad_caller_config_stops_the_program_naming_the_key(config, key, rule):
    with pytest.raises(SettingsError) as error:
        run_program(config)
    message = str(error.value)
    assert f"crosscloud:{key}" in message and rule in message, message


@pytest.mark.parametrize(
    ("config", "uri_name"),
    [
        ({"callerAppDisplayName": "AWS-Federation-App"}, "AWS-Federation-App"),  # the default
        ({"callerAppDisplayName": "AWS Federation App"}, "AWS-Federation-App"),  # space vs '-'
        ({"appDisplayName": "Team API", "callerAppDisplayName": "team-api"}, "team-api"),
    ],
)
def test_a_reader_api_name_that_gives_the_federation_uri_is_refused(config, uri_name):
    # Both apps take api://{tenantId}/{name}; Entra refuses a second app with the same URI.
    with pytest.raises(SettingsError) as error:
        run_program(config)
    message = str(error.value)
    assert "crosscloud:callerAppDisplayName" in message, message
    assert "crosscloud:appDisplayName" in message, message
    assert f"api://{{tenantId}}/{uri_name}" in message, message


def test_a_federation_name_equal_to_the_reader_api_default_is_refused():
    # The reader API's default name is {prefix}-{stack}-reader-api (stack "dev" here).
    with pytest.raises(SettingsError) as error:
        run_program({"appDisplayName": "crosscloud-dev-reader-api"})
    message = str(error.value)
    assert "default name 'crosscloud-dev-reader-api'" in message, message
    assert "crosscloud:appDisplayName" in message and "crosscloud:callerAppDisplayName" in message


def test_the_same_name_is_fine_where_the_federation_uri_differs():
    same = {"callerAppDisplayName": "AWS-Federation-App"}
    # audience appId: the federation app's URI is api://{appId}, never the reader API's.
    assert parse_settings({**same, "audience": "appId"}).caller_app_display_name
    assert parse_settings({"callerAppDisplayName": "AWS-Federation-App-2"})
