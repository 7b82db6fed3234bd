"""Nothing works with storage account keys: no `storage.Blob`, no key or SAS in app settings."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from .common import BLOB, Props, app_settings, resource_policy

# Markers of storage account keys and SAS tokens in app settings and connection strings. They are
# how a listKeys/listAccountSas invoke surfaces: policy packs see resources, never invokes.
STORAGE_SECRET_MARKERS = ("accountkey=", "sharedaccesssignature=", "&sig=", "?sig=")


def _secret_marker(value: Any) -> bool:
    return isinstance(value, str) and any(m in value.lower() for m in STORAGE_SECRET_MARKERS)


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
        for name, value in app_settings(resource_type, props)
        if _secret_marker(value)
    ]


POLICY = resource_policy(
    "no-key-based-storage-access",
    "No azure-native:storage:Blob (it signs with account keys) and no storage account key "
    "or SAS token in app settings or connection strings.",
    check_key_based_storage_access,
    Severity.HIGH,
)
