"""no-long-lived-credentials: no user, key, password or basic auth."""

from __future__ import annotations

import pytest

from policy.rules import common
from policy.rules.no_long_lived_credentials import CREDENTIAL_TYPES
from policy.tests.engine import Resource, evaluate, policies_violated
from policy.tests.samples import AUDIENCE


@pytest.mark.parametrize("resource_type", sorted(CREDENTIAL_TYPES))
def test_credential_resources_are_refused(resource_type: str) -> None:
    found = evaluate([Resource(resource_type, {})])
    assert [v.policy for v in found] == ["no-long-lived-credentials"]
    assert resource_type in found[0].message


def test_application_password_block_is_refused() -> None:
    app = {"displayName": "AWS-Federation-App", "identifierUris": [AUDIENCE]}
    assert evaluate([Resource(common.AZUREAD_APPLICATION, app)]) == []
    with_password = dict(app, password={"displayName": "ci"})
    assert policies_violated([Resource(common.AZUREAD_APPLICATION, with_password)]) == {
        "no-long-lived-credentials"
    }


@pytest.mark.parametrize("resource_type", [common.WEB_APP_FTP_ALLOWED, common.WEB_APP_SCM_ALLOWED])
def test_basic_auth_publishing_must_stay_off(resource_type: str) -> None:
    assert evaluate([Resource(resource_type, {"allow": False})]) == []
    assert policies_violated([Resource(resource_type, {"allow": True})]) == {
        "no-long-lived-credentials"
    }
