"""function-app-callers-authenticated: no function app left open (issue 16)."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policy.rules import common
from policy.rules.function_app_front_door import AUTH_SETTINGS_V1, AUTH_SETTINGS_V2
from policy.tests.engine import Resource, evaluate
from policy.tests.samples import FLEX_APP, FUNCTION_APP, IDENTITY_SETTINGS

RULE = "function-app-callers-authenticated"


def without(setting: str, props: dict[str, Any] = FLEX_APP) -> dict[str, Any]:
    kept = [s for s in props["siteConfig"]["appSettings"] if s["name"] != setting]
    return {**props, "siteConfig": {**props["siteConfig"], "appSettings": kept}}


def with_value(setting: str, value: Any) -> dict[str, Any]:
    changed = [{**s, "value": value} if s["name"] == setting else s for s in IDENTITY_SETTINGS]
    return {**FLEX_APP, "siteConfig": {**FLEX_APP["siteConfig"], "appSettings": changed}}


def test_apps_told_who_may_call_pass() -> None:
    assert (
        evaluate([Resource(common.WEB_APP, FLEX_APP), Resource(common.WEB_APP, FUNCTION_APP)]) == []
    )


@pytest.mark.parametrize(
    "setting", ["CROSSCLOUD_TENANT_ID", "CROSSCLOUD_CALLER_AUDIENCE", "CROSSCLOUD_CALLER_CLIENT_ID"]
)
@pytest.mark.parametrize("base", [FLEX_APP, FUNCTION_APP], ids=["flex", "classic"])
def test_an_app_without_a_caller_setting_is_refused(setting: str, base: dict[str, Any]) -> None:
    app = Resource(common.WEB_APP, without(setting, base), name="app")
    found = evaluate([app])
    assert [(v.policy, v.urn) for v in found] == [(RULE, app.urn)]
    assert setting in found[0].message


def test_an_empty_caller_setting_is_refused() -> None:
    found = evaluate([Resource(common.WEB_APP, with_value("CROSSCLOUD_CALLER_AUDIENCE", ""))])
    assert [v.policy for v in found] == [RULE]


def test_a_value_not_known_at_preview_passes() -> None:
    props = with_value("CROSSCLOUD_CALLER_CLIENT_ID", UNKNOWN_STRING_VALUE)
    assert evaluate([Resource(common.WEB_APP, props)]) == []


def test_settings_in_a_separate_application_settings_resource_count() -> None:
    app = Resource(common.WEB_APP, without("CROSSCLOUD_TENANT_ID"), name="app")
    extra = Resource(
        common.WEB_APP_SETTINGS,
        {"name": FLEX_APP["name"], "properties": {"CROSSCLOUD_TENANT_ID": "t"}},
        name="settings",
    )
    assert evaluate([app, extra]) == []


def test_a_web_app_that_is_no_function_app_is_not_this_rules_business() -> None:
    site = {"kind": "app,linux", "httpsOnly": True, "siteConfig": {"minTlsVersion": "1.2"}}
    assert RULE not in {v.policy for v in evaluate([Resource(common.WEB_APP, site)])}


def easy_auth(**validation: Any) -> Resource:
    props = {
        "name": FLEX_APP["name"],
        "platform": {"enabled": True},
        "globalValidation": {
            "requireAuthentication": True,
            "unauthenticatedClientAction": "Return401",
            **validation,
        },
    }
    return Resource(AUTH_SETTINGS_V2, props, name="auth")


def test_easy_auth_that_requires_authentication_passes() -> None:
    assert evaluate([Resource(common.WEB_APP, FLEX_APP), easy_auth()]) == []


@pytest.mark.parametrize(
    "validation",
    [
        {"requireAuthentication": False},
        {"requireAuthentication": None},
        {"unauthenticatedClientAction": "AllowAnonymous"},
    ],
    ids=["not-required", "unset", "allow-anonymous"],
)
def test_easy_auth_that_lets_anonymous_callers_in_is_refused(validation: dict[str, Any]) -> None:
    auth = easy_auth(**validation)
    found = evaluate([Resource(common.WEB_APP, FLEX_APP), auth])
    assert [(v.policy, v.urn) for v in found] == [(RULE, auth.urn)]


def test_classic_easy_auth_allowing_anonymous_is_refused() -> None:
    auth = Resource(
        AUTH_SETTINGS_V1,
        {
            "name": FLEX_APP["name"],
            "enabled": True,
            "unauthenticatedClientAction": "AllowAnonymous",
        },
        name="auth-v1",
    )
    assert [v.policy for v in evaluate([auth])] == [RULE]


def test_easy_auth_switched_off_is_not_used() -> None:
    auth = Resource(AUTH_SETTINGS_V2, {"platform": {"enabled": False}}, name="auth")
    assert evaluate([auth]) == []


def with_setting(name: str, value: Any) -> dict[str, Any]:
    added = [*IDENTITY_SETTINGS, {"name": name, "value": value}]
    return {**FLEX_APP, "siteConfig": {**FLEX_APP["siteConfig"], "appSettings": added}}


@pytest.mark.parametrize(
    "host",
    [
        # azure-identity's AzureAuthorityHosts, and China's alias (KNOWN_ALIASES).
        "login.microsoftonline.com",
        "https://login.microsoftonline.us/",
        "login.chinacloudapi.cn",
        "https://login.partner.microsoftonline.cn",
        "",  # the function then uses login.microsoftonline.com
        UNKNOWN_STRING_VALUE,
    ],
)
def test_an_entra_authority_host_passes(host: str) -> None:
    assert evaluate([Resource(common.WEB_APP, with_setting("AZURE_AUTHORITY_HOST", host))]) == []


@pytest.mark.parametrize(
    "host",
    [
        "login.evil.example",
        "https://login.microsoftonline.com.evil.example",
        "http://login.microsoftonline.com",
        "https://login.microsoftonline.com/evil-tenant",
        "https://login.microsoftonline.com:8443",
        "https://user@login.microsoftonline.com",
        "login.microsoftonline.de",  # Microsoft Cloud Germany, closed in 2021
    ],
)
def test_another_authority_host_is_refused(host: str) -> None:
    app = Resource(common.WEB_APP, with_setting("AZURE_AUTHORITY_HOST", host), name="app")
    found = evaluate([app])
    assert [(v.policy, v.urn) for v in found] == [(RULE, app.urn)]
    assert "AZURE_AUTHORITY_HOST" in found[0].message


def test_a_caller_audience_equal_to_the_federation_audience_is_refused() -> None:
    caller = next(
        s["value"] for s in IDENTITY_SETTINGS if s["name"] == "CROSSCLOUD_CALLER_AUDIENCE"
    )
    app = Resource(common.WEB_APP, with_setting("CROSSCLOUD_AUDIENCE", caller), name="app")
    found = evaluate([app])
    assert [(v.policy, v.urn) for v in found] == [(RULE, app.urn)]
    assert "CROSSCLOUD_AUDIENCE" in found[0].message


@pytest.mark.parametrize("audience", ["api://tenant/AWS-Federation-App", UNKNOWN_STRING_VALUE])
def test_a_separate_federation_audience_passes(audience: str) -> None:
    props = with_setting("CROSSCLOUD_AUDIENCE", audience)
    assert evaluate([Resource(common.WEB_APP, props)]) == []
