"""Many trusted identities: all of them trusted and assigned, and IAM's policy size respected."""

from __future__ import annotations

import json
import uuid

import pytest

from components.settings import SettingsError
from localcloud.mocked_program import run_program


def guids(count: int) -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_OID, f"identity-{n}")) for n in range(count)]


def test_fifty_extra_identities_are_trusted_and_assigned_with_a_quota_warning():
    extra = guids(50)
    run = run_program({"extraPrincipalIds": extra})
    (role,) = run.of_type("aws:iam/role:Role")
    statement = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    (subs,) = [v for k, v in statement["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    assert set(extra) <= set(subs) and len(subs) == 52
    assigned = {
        a.inputs["principalObjectId"]
        for a in run.of_type("azuread:index/appRoleAssignment:AppRoleAssignment")
        if a.name.startswith("federation-")
    }
    assert assigned == set(subs)
    compact = json.dumps(json.loads(role.inputs["assumeRolePolicy"]), separators=(",", ":"))
    assert len(compact) > 2048
    assert any("Service Quotas" in w and "2048" in w for w in run.warnings)


def test_two_identities_need_no_quota_increase():
    assert not [w for w in run_program().warnings if "Service Quotas" in w]


def test_more_identities_than_iam_can_ever_hold_stop_the_program():
    # A SettingsError (a pulumi.RunError): Pulumi prints the message without a traceback.
    with pytest.raises(
        SettingsError, match=r"crosscloud:extraPrincipalIds: 102 trusted identities"
    ):
        run_program({"extraPrincipalIds": guids(100)})
