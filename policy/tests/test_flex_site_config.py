"""flex-app-site-config-supported: no siteConfig property Flex Consumption refuses or ignores."""

from __future__ import annotations

import pytest

from policy.rules import common
from policy.rules.flex_site_config import FLEX_REFUSED_SITE_PROPERTIES
from policy.tests.engine import Resource, evaluate
from policy.tests.samples import FLEX_APP, flex_app, function_app

# A value of the right shape for each property, as someone might set it.
EXAMPLE_VALUES = {
    "ftpsState": "Disabled",
    "linuxFxVersion": "Python|3.12",
    "netFrameworkVersion": "v4.6",
    "javaVersion": "17",
    "powerShellVersion": "7.4",
    "windowsFxVersion": "DOTNET-ISOLATED|8.0",
    "use32BitWorkerProcess": False,
    "functionAppScaleLimit": 40,
    "preWarmedInstanceCount": 1,
    "minimumElasticInstanceCount": 1,
    "functionsRuntimeScaleMonitoringEnabled": False,
}


def test_the_issue_list_is_covered() -> None:
    # The properties MicrosoftDocs' Flex deprecations and the service's 400s name (issue 9).
    assert set(EXAMPLE_VALUES) == set(FLEX_REFUSED_SITE_PROPERTIES)


def test_flex_app_with_only_accepted_site_properties_passes() -> None:
    assert evaluate([Resource(common.WEB_APP, FLEX_APP)]) == []


@pytest.mark.parametrize("key", sorted(FLEX_REFUSED_SITE_PROPERTIES))
def test_each_refused_property_is_caught_on_a_flex_app(key: str) -> None:
    # Even "harmless" values (ftpsState Disabled, use32BitWorkerProcess false): the service
    # refuses the key itself.
    found = evaluate([Resource(common.WEB_APP, flex_app(**{key: EXAMPLE_VALUES[key]}))])
    assert [v.policy for v in found] == ["flex-app-site-config-supported"]
    assert f"siteConfig.{key} " in found[0].message


def test_every_refused_property_is_reported() -> None:
    found = evaluate([Resource(common.WEB_APP, flex_app(**EXAMPLE_VALUES))])
    assert len(found) == len(EXAMPLE_VALUES)


def test_apps_outside_flex_are_not_this_rules_business() -> None:
    # The same properties are fine (ftpsState Disabled is required) outside Flex Consumption.
    app = function_app(linuxFxVersion="Python|3.12", use32BitWorkerProcess=False)
    assert evaluate([Resource(common.WEB_APP, app)]) == []
