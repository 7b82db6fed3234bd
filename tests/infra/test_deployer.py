"""The deployer's own role assignment carries its real principal type.

pulumi-azure-native's RoleAssignment sends `principalType: "User"` when given None
(pulumi_azure_native/authorization/role_assignment.py: `if principal_type is None: principal_type
= 'User'`), and ARM refuses a mismatch with UnmatchedPrincipalType: `pulumi up` from CI (a
service principal) failed. The type now comes from Entra ID (`azuread.get_directory_object`) or
from `crosscloud:deployerPrincipalType`.
"""

from __future__ import annotations

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

LOOKUP = "azuread:index/getDirectoryObject:getDirectoryObject"
ASSIGNMENT = "azure-native:authorization:RoleAssignment"


def deployer_grants(run: ProgramRun) -> list[Registered]:
    grants = [a for a in run.of_type(ASSIGNMENT) if a.inputs["principalId"] == DEPLOYER_OBJECT_ID]
    assert grants, "the deployer gets no role assignment: nothing to check"
    return grants


@pytest.mark.parametrize(
    ("directory_type", "expected"),
    [("ServicePrincipal", "ServicePrincipal"), ("User", "User"), ("Group", "Group")],
    ids=["service-principal", "user", "group"],
)
def test_the_deployer_grant_carries_the_type_entra_reports(
    directory_type: str, expected: str
) -> None:
    run = run_program(cloud=MockCloud(deployer_type=directory_type))
    assert LOOKUP in run.invokes
    assert {g.inputs["principalType"] for g in deployer_grants(run)} == {expected}


@pytest.mark.parametrize("override", ["ServicePrincipal", "User"])
def test_the_config_override_wins_and_needs_no_lookup(override: str) -> None:
    # Entra would refuse the lookup (a CI principal without Directory.Read.All) and would say
    # the opposite type if asked: the override is used as is, and nothing is asked.
    for cloud in (MockCloud(deployer_type=None), MockCloud(deployer_type="Group")):
        run = run_program({"deployerPrincipalType": override}, cloud=cloud)
        assert LOOKUP not in run.invokes
        assert {g.inputs["principalType"] for g in deployer_grants(run)} == {override}


def test_a_failed_lookup_stops_before_any_resource_and_names_the_key() -> None:
    seen: list[Registered] = []
    with pytest.raises(DeployerLookupError) as raised:
        run_program(cloud=MockCloud(deployer_type=None), registered=seen)
    message = str(raised.value)
    assert "crosscloud:deployerPrincipalType" in message
    assert "Authorization_RequestDenied" in message  # the cause is kept
    assert DEPLOYER_OBJECT_ID in message
    assert seen == []


def test_an_unexpected_directory_type_stops_too() -> None:
    seen: list[Registered] = []
    with pytest.raises(DeployerLookupError, match="crosscloud:deployerPrincipalType"):
        run_program(cloud=MockCloud(deployer_type="Device"), registered=seen)
    assert seen == []


@pytest.mark.parametrize("value", ["user", "ManagedIdentity", "Group", ""])
def test_the_override_accepts_only_user_or_service_principal(value: str) -> None:
    with pytest.raises(SettingsError, match="crosscloud:deployerPrincipalType") as raised:
        run_program({"deployerPrincipalType": value})
    assert "User, ServicePrincipal" in str(raised.value)
