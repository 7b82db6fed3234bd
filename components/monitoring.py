"""Log Analytics + workspace-based Application Insights that accept only Entra identities.

Mirrors the monitoring of Microsoft's Flex templates (Azure-Samples/functions-quickstart-python-
http-azd, infra/main.bicep + infra/app/rbac.bicep + infra/app/api.bicep): AVM
`operational-insights/workspace` and `insights/component` with `disableLocalAuth: true`,
Monitoring Metrics Publisher for the app's identity on the component, and the app settings
`APPLICATIONINSIGHTS_CONNECTION_STRING` + `APPLICATIONINSIGHTS_AUTHENTICATION_STRING`.
With local auth off, the instrumentation key inside the connection string no longer admits
anything: ingestion needs an Entra token of an identity holding the publisher role.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import applicationinsights, monitor, operationalinsights

from components.azure_roles import AzureRole, assign_role

# Categories of the blob service's resource logs (table StorageBlobLogs):
# https://learn.microsoft.com/azure/storage/blobs/monitor-blob-storage-reference
BLOB_AUDIT_CATEGORIES = ("StorageRead", "StorageWrite", "StorageDelete")


def authentication_string(client_id: str) -> str:
    """`APPLICATIONINSIGHTS_AUTHENTICATION_STRING` for an identity: Entra ingestion.

    Empty `client_id` is the system-assigned identity (`Authorization=AAD`); a user-assigned one
    is named by its client id, as infra/app/api.bicep of the Flex quickstart does.
    """
    return f"ClientId={client_id};Authorization=AAD" if client_id else "Authorization=AAD"


@dataclass(frozen=True)
class MonitoringArgs:
    """Inputs of `Monitoring`."""

    workspace_name: str
    """Log Analytics workspace name (4-63 letters, digits, hyphens)."""
    component_name: str
    """Application Insights component name."""
    resource_group_name: pulumi.Input[str]
    """Resource group of both."""
    location: str
    """Azure region."""
    subscription_id: str
    """Subscription; role definition ids are built from it."""
    retention_days: int
    """Days the workspace keeps everything (traces, requests, storage logs): 30-730."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for both resources."""


class Monitoring(pulumi.ComponentResource):
    """Workspace and Application Insights with local auth off; `allow_publisher()` lets an
    identity send telemetry, `audit_blob_service()` sends a storage account's blob logs here.
    """

    workspace_id: pulumi.Output[str]
    """ARM id of the Log Analytics workspace."""
    workspace_customer_id: pulumi.Output[str]
    """The workspace's GUID (what `az monitor log-analytics query -w` takes)."""
    component_id: pulumi.Output[str]
    """ARM id of the Application Insights component: scope of the publisher grants."""
    connection_string: pulumi.Output[str]
    """Ingestion address of the component; not a credential once local auth is off."""

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("crosscloud:monitoring:Monitoring", name, None, opts)
        self._name = name
        self._subscription_id = args.subscription_id
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        workspace = operationalinsights.Workspace(
            f"{name}-workspace",
            workspace_name=args.workspace_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku={"name": operationalinsights.WorkspaceSkuNameEnum.PER_GB2018},
            retention_in_days=args.retention_days,
            features={
                # No shared keys: agents and APIs must present Entra tokens.
                "disable_local_auth": True,
                # Readers of a resource see its logs only if they can read the resource.
                "enable_log_access_using_only_resource_permissions": True,
            },
            tags=tags,
            opts=child,
        )
        component = applicationinsights.Component(
            f"{name}-insights",
            resource_name_=args.component_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="web",
            application_type=applicationinsights.ApplicationType.WEB,
            # Workspace-based: telemetry lands in (and is retained by) the workspace.
            ingestion_mode=applicationinsights.IngestionMode.LOG_ANALYTICS,
            workspace_resource_id=workspace.id,
            # The instrumentation key stops admitting telemetry; only Entra tokens do.
            disable_local_auth=True,
            tags=tags,
            opts=child,
        )
        self._component = component
        self._workspace = workspace
        self.workspace_id = workspace.id
        self.workspace_customer_id = workspace.customer_id
        self.component_id = component.id
        self.connection_string = component.connection_string
        self.register_outputs(
            {
                "workspace_id": self.workspace_id,
                "workspace_customer_id": self.workspace_customer_id,
                "component_id": self.component_id,
                "connection_string": self.connection_string,
            }
        )

    def allow_publisher(self, role_name: str, principal_id: pulumi.Input[str]) -> pulumi.Resource:
        """Monitoring Metrics Publisher on the component (and nothing broader) for an identity."""
        return assign_role(
            f"{self._name}-{role_name}",
            scope=self._component.id,
            principal_id=principal_id,
            role=AzureRole.MONITORING_METRICS_PUBLISHER,
            subscription_id=self._subscription_id,
            parent=self,
        )

    def audit_blob_service(
        self, role_name: str, storage_account_id: pulumi.Input[str]
    ) -> monitor.DiagnosticSetting:
        """Send a storage account's blob reads, writes and deletes to the workspace.

        Each StorageBlobLogs row names the caller (`RequesterObjectId`, `AuthenticationType`
        OAuth) and the object (`Uri`): who read which blob.
        """
        return monitor.DiagnosticSetting(
            f"{self._name}-{role_name}",
            name="audit-to-workspace",
            # Blob logs are configured on the blob service, not on the account.
            resource_uri=pulumi.Output.concat(storage_account_id, "/blobServices/default"),
            workspace_id=self._workspace.id,
            logs=[{"category": category, "enabled": True} for category in BLOB_AUDIT_CATEGORIES],
            opts=pulumi.ResourceOptions(parent=self),
        )
