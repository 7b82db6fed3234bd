"""flex-app-no-ftp-policy: no WebAppFtpAllowed on a Flex Consumption app (it has no FTP)."""

from __future__ import annotations

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policy.rules import common
from policy.tests.engine import Resource, evaluate
from policy.tests.samples import FLEX_APP, FUNCTION_APP


def ftp_policy(app: Resource, *, by_dependency: bool) -> Resource:
    if by_dependency:
        props, deps = {"name": UNKNOWN_STRING_VALUE, "allow": False}, {"name": [app.urn]}
    else:
        props, deps = {"name": app.props["name"], "allow": False}, {}
    return Resource(common.WEB_APP_FTP_ALLOWED, props, name="ftp", property_dependencies=deps)


@pytest.mark.parametrize("by_dependency", [True, False], ids=["dependency", "value"])
def test_ftp_policy_on_a_flex_app_is_refused(by_dependency: bool) -> None:
    app = Resource(common.WEB_APP, FLEX_APP, name="app")
    ftp = ftp_policy(app, by_dependency=by_dependency)
    found = evaluate([app, ftp])
    assert [(v.policy, v.urn) for v in found] == [("flex-app-no-ftp-policy", ftp.urn)]


def test_scm_policy_on_a_flex_app_passes() -> None:
    app = Resource(common.WEB_APP, FLEX_APP, name="app")
    scm = Resource(
        common.WEB_APP_SCM_ALLOWED,
        {"name": UNKNOWN_STRING_VALUE, "allow": False},
        name="scm",
        property_dependencies={"name": [app.urn]},
    )
    assert evaluate([app, scm]) == []


def test_ftp_policy_outside_flex_is_not_this_rules_business() -> None:
    app = Resource(common.WEB_APP, {**FUNCTION_APP, "name": "classic"}, name="app")
    assert evaluate([app, ftp_policy(app, by_dependency=False)]) == []
