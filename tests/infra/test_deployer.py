"""The deployer's own role assignment carries its real principal type.

pulumi-azure-native's RoleAssignment sends `principalType: "User"` when given None
(pulumi_azure_native/authorization/role_assignment.py: `if principal_type is None: principal_type
= 'User'`), and ARM refuses a mismatch with UnmatchedPrincipalType: `pulumi up` from CI (a
service principal) failed. The type now comes from `crosscloud:deployerPrincipalType` or from
Entra ID, where the deployer reads only its own object, which needs no Graph permission: as a
service principal first ("A service principal can retrieve its own application and service
principal details without being granted any application permissions",
https://learn.microsoft.com/graph/api/serviceprincipal-get), then, on "not found", as a user
(a signed-in user reads itself). `azuread.get_directory_object` (Graph GET /directoryObjects/{id})
needed Directory.Read.All for a service principal and is no longer called.
"""

from __future__ import annotations

import pulumi
import pytest

from components.deployer import DeployerLookupError
from components.settings import SettingsError
from localcloud.mocked_program import (
    DEPLOYER_OBJECT_ID,
    MockCloud,
    ProgramRun,
    Registered,
    run_program,
)

AS_SERVICE_PRINCIPAL = "azuread:index/getServicePrincipal:getServicePrincipal"
AS_USER = "azuread:index/getUser:getUser"
DIRECTORY_LOOKUPS = {
    AS_SERVICE_PRINCIPAL,
    AS_USER,
    "azuread:index/getDirectoryObject:getDirectoryObject",
    "azuread:index/getServicePrincipals:getServicePrincipals",
    "azuread:index/getUsers:getUsers",
}
ASSIGNMENT = "azure-native:authorization:RoleAssignment"


def deployer_grants(run: ProgramRun) -> list[Registered]:
    grants = [a for a in run.of_type(ASSIGNMENT) if a.inputs["principalId"] == DEPLOYER_OBJECT_ID]
    assert grants, "the deployer gets no role assignment: nothing to check"
    return grants


@pytest.mark.parametrize(
    ("deployer", "expected", "lookups"),
    [
        ("ServicePrincipal", "ServicePrincipal", [AS_SERVICE_PRINCIPAL]),
        ("ManagedIdentity", "ServicePrincipal", [AS_SERVICE_PRINCIPAL]),
        ("User", "User", [AS_SERVICE_PRINCIPAL, AS_USER]),
    ],
    ids=["service-principal", "managed-identity", "user"],
)
def test_the_deployer_grant_carries_the_type_entra_reports(
    deployer: str, expected: str, lookups: list[str]
) -> None:
    run = run_program(cloud=MockCloud(deployer_type=deployer))
    # Only by-id reads of the deployer's own object, in this order; a service principal is
    # never asked about as a user (GET /users/{id} would need User.Read.All).
    assert [i for i in run.invokes if i in DIRECTORY_LOOKUPS] == lookups
    assert {g.inputs["principalType"] for g in deployer_grants(run)} == {expected}


@pytest.mark.parametrize("override", ["ServicePrincipal", "User"])
def test_the_config_override_wins_and_needs_no_lookup(override: str) -> None:
    # Entra would refuse the lookup, or would say the opposite type if asked: the override is
    # used as is, and nothing is asked.
    opposite = "User" if override == "ServicePrincipal" else "ServicePrincipal"
    for cloud in (MockCloud(deployer_type=None), MockCloud(deployer_type=opposite)):
        run = run_program({"deployerPrincipalType": override}, cloud=cloud)
        assert DIRECTORY_LOOKUPS.isdisjoint(run.invokes)
        assert {g.inputs["principalType"] for g in deployer_grants(run)} == {override}


def test_a_refused_lookup_stops_before_any_resource_and_names_the_key() -> None:
    seen: list[Registered] = []
    with pytest.raises(DeployerLookupError) as raised:
        run_program(cloud=MockCloud(deployer_type=None), registered=seen)
    message = str(raised.value)
    assert "crosscloud:deployerPrincipalType" in message
    assert "Authorization_RequestDenied" in message  # the cause is kept
    assert DEPLOYER_OBJECT_ID in message
    assert seen == []


@pytest.mark.parametrize("deployer", ["Group", "Device"])
def test_an_object_that_is_neither_stops_too(deployer: str) -> None:
    # Groups and devices never sign in; both by-id lookups answer "not found".
    seen: list[Registered] = []
    with pytest.raises(DeployerLookupError, match="crosscloud:deployerPrincipalType") as raised:
        run_program(cloud=MockCloud(deployer_type=deployer), registered=seen)
    assert "no service principal and no user" in str(raised.value)
    assert isinstance(raised.value, pulumi.RunError)  # printed without a traceback
    assert seen == []


@pytest.mark.parametrize("value", ["user", "ManagedIdentity", "Group", ""])
def test_the_override_accepts_only_user_or_service_principal(value: str) -> None:
    with pytest.raises(SettingsError, match="crosscloud:deployerPrincipalType") as raised:
        run_program({"deployerPrincipalType": value})
    assert "User, ServicePrincipal" in str(raised.value)
