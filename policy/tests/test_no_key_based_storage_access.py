"""no-key-based-storage-access: no storage.Blob, no key or SAS in settings."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policy.rules import common
from policy.tests.engine import Resource, evaluate, not_run
from policy.tests.samples import FUNCTION_APP, IDENTITY_SETTINGS, function_app

KEY_CONNECTION = "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=c2VjcmV0;"
SAS_URL = "https://x.blob.core.windows.net/c/p.zip?sv=2022-11-02&sr=b&sig=abc%3D"


def test_blob_resource_is_refused() -> None:
    found = evaluate([Resource(common.BLOB, {"blobName": "hello.txt"})])
    assert [v.policy for v in found] == ["no-key-based-storage-access"]


def test_identity_based_app_settings_pass() -> None:
    assert evaluate([Resource(common.WEB_APP, FUNCTION_APP)]) == []


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        (
            common.WEB_APP,
            {
                **FUNCTION_APP,
                "siteConfig": {
                    **FUNCTION_APP["siteConfig"],
                    "appSettings": [
                        *IDENTITY_SETTINGS,
                        {"name": "AzureWebJobsStorage", "value": KEY_CONNECTION},
                    ],
                },
            },
        ),
        (
            common.WEB_APP,
            {
                **FUNCTION_APP,
                "siteConfig": {
                    **FUNCTION_APP["siteConfig"],
                    "connectionStrings": [{"name": "Data", "connectionString": KEY_CONNECTION}],
                },
            },
        ),
        (common.WEB_APP_SETTINGS, {"properties": {"WEBSITE_RUN_FROM_PACKAGE": SAS_URL}}),
        (
            common.WEB_APP_CONNECTION_STRINGS,
            {"properties": {"Data": {"value": KEY_CONNECTION, "type": "Custom"}}},
        ),
    ],
    ids=["app-setting-key", "connection-string-key", "settings-sas", "connection-strings-key"],
)
def test_storage_keys_and_sas_in_settings_are_refused(
    resource_type: str, props: dict[str, Any]
) -> None:
    found = evaluate([Resource(resource_type, props)])
    assert [v.policy for v in found] == ["no-key-based-storage-access"]
    assert "storage account key or SAS" in found[0].message


def test_settings_not_known_in_preview_do_not_hide_the_others() -> None:
    settings = [
        *IDENTITY_SETTINGS,
        {"name": "AzureWebJobsStorage__clientId", "value": UNKNOWN_STRING_VALUE},
        {"name": "Data", "value": KEY_CONNECTION},
    ]
    app = Resource(common.WEB_APP, function_app(appSettings=settings))
    assert not_run([app]) == []
    assert [v.policy for v in evaluate([app])] == ["no-key-based-storage-access"]
