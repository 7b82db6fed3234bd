"""A hardened StorageV2 account with private containers and data-plane role grants."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
from pulumi_azure_native import authorization, storage

from components.azure_roles import AzureRole, assign_role
from components.deployer import PrincipalType
from shipping.blob_upload import BlobUpload, BlobUploadArgs


@dataclass(frozen=True)
class SecureStorageAccountArgs:
    """Inputs of `SecureStorageAccount`."""

    account_name: str
    """Globally unique account name (3-24 lowercase letters and digits; see naming.py)."""
    resource_group_name: pulumi.Input[str]
    """Resource group the account lives in."""
    location: str
    """Azure region."""
    subscription_id: str
    """Subscription of the account; role definition ids are built from it."""
    containers: Sequence[str] = ()
    """Private blob containers to create."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the account."""


class SecureStorageAccount(pulumi.ComponentResource):
    """Storage account that only Entra identities can use: shared key (account keys and SAS) off,
    no anonymous blob access, HTTPS with TLS 1.2+, no cross-tenant replication.

    Data-plane access is granted per identity with `grant()`, which adds a role assignment as a
    child of this component.
    """

    account_name: pulumi.Output[str]
    account_id: pulumi.Output[str]
    blob_endpoint: pulumi.Output[str]
    """Primary blob endpoint, `https://{account}.blob.core.windows.net/` (with the slash)."""

    def __init__(
        self,
        name: str,
        args: SecureStorageAccountArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("crosscloud:storage:SecureStorageAccount", name, None, opts)
        self._name = name
        self._subscription_id = args.subscription_id
        account = storage.StorageAccount(
            f"{name}-account",
            account_name=args.account_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind=storage.Kind.STORAGE_V2,
            sku={"name": storage.SkuName.STANDARD_LRS},
            # Account keys and SAS stop working: every request must carry an Entra token.
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            allow_blob_public_access=False,
            allow_cross_tenant_replication=False,
            enable_https_traffic_only=True,
            minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
            # Local users are SFTP/NFS identities with their own passwords or keys.
            is_local_user_enabled=False,
            is_sftp_enabled=False,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._containers: dict[str, storage.BlobContainer] = {}
        for container in args.containers:
            self._containers[container] = storage.BlobContainer(
                f"{name}-{container}",
                container_name=container,
                account_name=account.name,
                resource_group_name=args.resource_group_name,
                public_access=storage.PublicAccess.NONE,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self._account = account
        self.account_name = account.name
        self.account_id = account.id
        self.blob_endpoint = account.primary_endpoints.apply(lambda e: e.blob)
        self.register_outputs(
            {
                "account_name": self.account_name,
                "account_id": self.account_id,
                "blob_endpoint": self.blob_endpoint,
            }
        )

    def grant(
        self,
        role_name: str,
        principal_id: pulumi.Input[str],
        role: AzureRole,
        principal_type: PrincipalType = "ServicePrincipal",
    ) -> authorization.RoleAssignment:
        """Give `principal_id` a data-plane `role` on this account (see `assign_role`)."""
        return assign_role(
            f"{self._name}-{role_name}",
            scope=self._account.id,
            principal_id=principal_id,
            role=role,
            subscription_id=self._subscription_id,
            parent=self,
            principal_type=principal_type,
        )

    def container_id(self, container: str) -> pulumi.Output[str]:
        """ARM id of one of this account's containers (`…/blobServices/default/containers/<name>`);
        a scope built from it depends on the container resource."""
        return self._containers[container].id

    def upload(
        self,
        role_name: str,
        container: str,
        source_dir: Path,
        uploader_grant: pulumi.Resource,
    ) -> BlobUpload:
        """Upload every file of `source_dir` into `container` with the deployer's Entra token.

        `uploader_grant` is the deployer's data-plane role assignment: with shared key off,
        nothing can be written before it exists.
        """
        return BlobUpload(
            f"{self._name}-{role_name}",
            BlobUploadArgs(
                account_url=self.blob_endpoint,
                container_name=container,
                source_dir=source_dir,
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self._containers[container], uploader_grant]
            ),
        )
