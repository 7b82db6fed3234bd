"""Nothing works with storage account keys: no `storage.Blob`, no key or SAS in app settings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import Severity

from .common import (
    BLOB,
    WEB_APP,
    WEB_APP_CONNECTION_STRINGS,
    WEB_APP_SETTINGS,
    Props,
    as_list,
    prop,
    resource_policy,
)

# Markers of storage account keys and SAS tokens in app settings and connection strings. They are
# how a listKeys/listAccountSas invoke surfaces: policy packs see resources, never invokes.
STORAGE_SECRET_MARKERS = ("accountkey=", "sharedaccesssignature=", "&sig=", "?sig=")


def _secret_marker(value: Any) -> bool:
    return isinstance(value, str) and any(m in value.lower() for m in STORAGE_SECRET_MARKERS)


def _app_settings(resource_type: str, props: Props) -> Iterable[tuple[str, Any]]:
    """(name, value) of every app setting and connection string a resource sets.

    A value not known yet (preview) is skipped rather than failing the whole rule: the engine runs
    the rule again with every value resolved before `pulumi up` creates the resource.
    """
    if resource_type == WEB_APP:
        site_config = props.get("siteConfig")
        if isinstance(site_config, Mapping):
            for setting in as_list(site_config.get("appSettings")):
                if isinstance(setting, Mapping):
                    yield str(setting.get("name")), prop(setting, "value")
            for connection in as_list(site_config.get("connectionStrings")):
                if isinstance(connection, Mapping):
                    yield str(connection.get("name")), prop(connection, "connectionString")
    elif resource_type in (WEB_APP_SETTINGS, WEB_APP_CONNECTION_STRINGS):
        properties = props.get("properties")
        if isinstance(properties, Mapping):
            for name in properties:
                value = prop(properties, name)
                yield name, prop(value, "value") if isinstance(value, Mapping) else value


def check_key_based_storage_access(resource_type: str, props: Props) -> list[str]:
    """No resource that works with storage account keys: `storage.Blob`, keys or SAS in settings."""
    if resource_type == BLOB:
        return [
            "azure-native:storage:Blob uploads with the account key (KeyBasedAuthenticationNot"
            "Permitted when shared key is off); upload with an Entra token instead"
        ]
    return [
        f"app setting or connection string {name!r} holds a storage account key or SAS token; "
        "use identity-based settings (e.g. AzureWebJobsStorage__accountName + __credential)"
        for name, value in _app_settings(resource_type, props)
        if _secret_marker(value)
    ]


POLICY = resource_policy(
    "no-key-based-storage-access",
    "No azure-native:storage:Blob (it signs with account keys) and no storage account key "
    "or SAS token in app settings or connection strings.",
    check_key_based_storage_access,
    Severity.HIGH,
)
