"""function-app-https-tls12-no-ftp: HTTPS only, TLS 1.2+, FTP off where FTP exists."""

from __future__ import annotations

from typing import Any

import pytest

from policy.rules import common
from policy.tests.engine import Resource, evaluate
from policy.tests.samples import FLEX_APP, FUNCTION_APP, flex_app, function_app


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_function_app_with_https_tls12_and_no_ftp_passes(tls: str) -> None:
    app = Resource(common.WEB_APP, function_app(minTlsVersion=tls, scmMinTlsVersion=tls))
    assert evaluate([app]) == []


def test_flex_app_without_ftps_state_passes() -> None:
    # Flex has no FTP and refuses ftpsState (flex_site_config.py): its absence is right there.
    assert "ftpsState" not in FLEX_APP["siteConfig"]
    assert evaluate([Resource(common.WEB_APP, FLEX_APP)]) == []


@pytest.mark.parametrize(
    "props",
    [
        {**FLEX_APP, "httpsOnly": False},
        flex_app(minTlsVersion="1.0"),
        flex_app(scmMinTlsVersion="1.1"),
    ],
    ids=["http", "tls10", "scm-tls11"],
)
def test_flex_app_transport_problems_are_refused(props: dict[str, Any]) -> None:
    assert {v.policy for v in evaluate([Resource(common.WEB_APP, props)])} == {
        "function-app-https-tls12-no-ftp"
    }


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({**FUNCTION_APP, "httpsOnly": False}, "httpsOnly"),
        ({k: v for k, v in FUNCTION_APP.items() if k != "httpsOnly"}, "httpsOnly"),
        (function_app(minTlsVersion="1.1"), "minTlsVersion"),
        (function_app(minTlsVersion=None), "minTlsVersion"),
        (function_app(scmMinTlsVersion="1.0"), "scmMinTlsVersion"),
        (function_app(ftpsState="FtpsOnly"), "ftpsState"),
        (function_app(ftpsState="AllAllowed"), "ftpsState"),
        ({k: v for k, v in FUNCTION_APP.items() if k != "siteConfig"}, "ftpsState"),
    ],
    ids=[
        "http",
        "https-unset",
        "tls11",
        "tls-unset",
        "scm-tls10",
        "ftps",
        "ftp",
        "no-site-config",
    ],
)
def test_function_app_transport_problems_are_refused(props: dict[str, Any], expected: str) -> None:
    found = evaluate([Resource(common.WEB_APP, props)])
    # Without siteConfig the app has no settings at all, so it is also open to every caller
    # (test_function_app_front_door.py); only that other rule may fire besides this one.
    if "siteConfig" not in props:
        found = [v for v in found if v.policy != "function-app-callers-authenticated"]
    assert {v.policy for v in found} == {"function-app-https-tls12-no-ftp"}
    assert any(expected in v.message for v in found)


def test_web_apps_that_are_not_function_apps_are_not_this_rules_business() -> None:
    assert evaluate([Resource(common.WEB_APP, {"kind": "app,linux", "httpsOnly": False})]) == []
