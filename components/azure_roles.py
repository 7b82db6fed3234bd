"""Built-in Azure role definition ids the program grants, and how to address them.

Ids are Azure's fixed GUIDs for built-in roles:
https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
"""

from __future__ import annotations

from enum import StrEnum

import pulumi
from pulumi_azure_native import authorization

from components.deployer import PrincipalType


class AzureRole(StrEnum):
    """Built-in roles by their fixed definition GUID."""

    STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
    """Read containers and blobs: what the functions need on the data account, and no more."""
    STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    """Write blobs: the deploying principal uploads the sample blobs with it (no account key)."""
    STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
    """The Functions host needs it on its own host account (AzureWebJobsStorage), nowhere else."""


def role_definition_id(subscription_id: str, role: AzureRole) -> str:
    """Subscription-scoped id that `authorization.RoleAssignment` expects."""
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/"
        f"roleDefinitions/{role.value}"
    )


def assign_role(
    name: str,
    *,
    scope: pulumi.Input[str],
    principal_id: pulumi.Input[str],
    role: AzureRole,
    subscription_id: str,
    parent: pulumi.Resource,
    principal_type: PrincipalType = "ServicePrincipal",
) -> authorization.RoleAssignment:
    """Role assignment of a built-in role at `scope`.

    `principal_type="ServicePrincipal"` lets ARM skip its directory look-up, which otherwise
    fails with PrincipalNotFound for a managed identity created seconds earlier. The type is never
    None: the SDK would send `'User'` instead, and ARM refuses a mismatch with
    UnmatchedPrincipalType (for the deployer, see components/deployer.py).
    """
    return authorization.RoleAssignment(
        name,
        principal_id=principal_id,
        principal_type=principal_type,
        role_definition_id=role_definition_id(subscription_id, role),
        scope=scope,
        opts=pulumi.ResourceOptions(parent=parent),
    )
