"""Storage accounts turn shared key access (account keys and SAS) off."""

from __future__ import annotations

from pulumi_policy import Severity

from .common import STORAGE_ACCOUNT, Props, resource_policy


def check_storage_account(resource_type: str, props: Props) -> list[str]:
    """Every storage account has shared key access (account keys and SAS) turned off."""
    if resource_type != STORAGE_ACCOUNT:
        return []
    if props.get("allowSharedKeyAccess") is False:
        return []
    return [
        "allowSharedKeyAccess must be false: Azure's default is true, and account keys and SAS "
        "tokens would keep working next to Entra ID"
    ]


POLICY = resource_policy(
    "storage-account-shared-key-disabled",
    "Storage accounts set allowSharedKeyAccess to false, so only Entra ID can reach data.",
    check_storage_account,
    Severity.HIGH,
)
