"""A Linux Python function app on its own Flex Consumption plan, run on managed identity only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
from pulumi_azure_native import managedidentity, web

from components.azure_roles import AzureRole, assign_role
from components.monitoring import authentication_string
from shipping.build import BuiltPackage
from shipping.onedeploy import FlexDeployment, FlexDeploymentArgs, scm_host

FUNCTION_ROUTES = ("list", "read", "whoami")
"""The HTTP routes of `function_src/function_app.py`, checked after each deployment."""

IdentityKind = Literal["SystemAssigned", "UserAssigned"]


@dataclass(frozen=True)
class FlexFunctionAppArgs:
    """Inputs of `FlexFunctionApp`."""

    app_name: str
    """Globally unique app name (its default host name); see naming.py."""
    plan_name: str
    """Name of the app's own Flex Consumption plan."""
    identity: IdentityKind
    """System-assigned identity, or a user-assigned one this component creates."""
    resource_group_name: pulumi.Input[str]
    """Resource group of the plan, app and identity."""
    location: str
    """Azure region (must offer Flex Consumption)."""
    subscription_id: str
    """Subscription; role definition ids are built from it."""
    host_account_name: pulumi.Input[str]
    """Host storage account (AzureWebJobsStorage and deployment packages)."""
    host_account_id: pulumi.Input[str]
    """Resource id of the host storage account: scope of the host role assignment."""
    host_blob_endpoint: pulumi.Input[str]
    """Blob endpoint of the host account, with its trailing slash."""
    deployment_container: str
    """Container in the host account that holds this app's deployment package."""
    python_version: str
    """Python runtime version (see settings.PYTHON_VERSIONS)."""
    instance_memory_mb: int
    """Flex instance memory."""
    maximum_instance_count: int
    """Flex scale-out limit."""
    package: BuiltPackage | None = None
    """Function package `deploy()` ships with One Deploy (redeployed only when its sha256
    changes)."""
    identity_name: str | None = None
    """Name of the user-assigned identity; required when `identity` is `UserAssigned`."""
    app_settings: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Application settings for the function code (the `CROSSCLOUD_*` contract)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every Azure resource of the app."""
    app_insights_connection_string: pulumi.Input[str] | None = None
    """Connection string of an Application Insights component with local auth off; the app then
    ingests with its identity (it also needs Monitoring Metrics Publisher there)."""
    always_ready_instances: int = 0
    """Flex always-ready instances of the HTTP trigger group (billed while idle)."""


class FlexFunctionApp(pulumi.ComponentResource):
    """Flex Consumption function app whose host storage, deployment storage and outbound calls
    all authenticate with its managed identity; no storage key or connection string exists.
    """

    principal_id: pulumi.Output[str]
    """Object id of the app's identity (the `sub` of its Entra tokens)."""
    client_id: pulumi.Output[str]
    """Client id of the user-assigned identity; empty for a system-assigned one."""
    app_id: pulumi.Output[str]
    app_name: pulumi.Output[str]
    default_host_name: pulumi.Output[str]
    scm_host_name: pulumi.Output[str]
    """Host of the app's deployment (Kudu/SCM) endpoint, used by One Deploy."""

    def __init__(
        self,
        name: str,
        args: FlexFunctionAppArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("crosscloud:functions:FlexFunctionApp", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        plan = web.AppServicePlan(
            f"{name}-plan",
            name=args.plan_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="functionapp",
            reserved=True,  # Linux
            sku={"name": "FC1", "tier": "FlexConsumption"},
            tags=tags,
            opts=child,
        )

        host_settings: dict[str, pulumi.Input[str]] = {
            # Identity-based host storage: the runtime gets tokens instead of a connection string.
            "AzureWebJobsStorage__accountName": args.host_account_name,
            "AzureWebJobsStorage__credential": "managedidentity",
        }
        if args.identity == "UserAssigned":
            if not args.identity_name:
                raise ValueError("FlexFunctionAppArgs.identity_name is required for UserAssigned")
            uami = managedidentity.UserAssignedIdentity(
                f"{name}-identity",
                resource_name_=args.identity_name,
                resource_group_name=args.resource_group_name,
                location=args.location,
                tags=tags,
                opts=child,
            )
            identity: dict[str, object] = {
                "type": web.ManagedServiceIdentityType.USER_ASSIGNED,
                # The input is a list of identity ids; ARM answers with a map keyed by them.
                "user_assigned_identities": [uami.id],
            }
            deployment_auth = {
                "type": web.AuthenticationType.USER_ASSIGNED_IDENTITY,
                "user_assigned_identity_resource_id": uami.id,
            }
            host_settings["AzureWebJobsStorage__clientId"] = uami.client_id
            app_identity_settings = {"CROSSCLOUD_IDENTITY_CLIENT_ID": uami.client_id}
            principal_id: pulumi.Output[str] = uami.principal_id
            client_id: pulumi.Output[str] = uami.client_id
        else:
            identity = {"type": web.ManagedServiceIdentityType.SYSTEM_ASSIGNED}
            deployment_auth = {"type": web.AuthenticationType.SYSTEM_ASSIGNED_IDENTITY}
            app_identity_settings = {}
            client_id = pulumi.Output.from_input("")

        if args.app_insights_connection_string is not None:
            # Entra ingestion, as infra/app/api.bicep of the Flex quickstart wires it.
            host_settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] = (
                args.app_insights_connection_string
            )
            host_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] = client_id.apply(
                authentication_string
            )
        settings = {**host_settings, **app_identity_settings, **args.app_settings}
        app = web.WebApp(
            f"{name}-app",
            name=args.app_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="functionapp,linux",
            server_farm_id=plan.id,
            https_only=True,
            identity=identity,
            function_app_config={
                "deployment": {
                    "storage": {
                        "type": web.FunctionsDeploymentStorageType.BLOB_CONTAINER,
                        "value": pulumi.Output.concat(
                            args.host_blob_endpoint, args.deployment_container
                        ),
                        "authentication": deployment_auth,
                    }
                },
                "runtime": {"name": web.RuntimeName.PYTHON, "version": args.python_version},
                "scale_and_concurrency": {
                    "instance_memory_mb": args.instance_memory_mb,
                    "maximum_instance_count": args.maximum_instance_count,
                    **_always_ready(args.always_ready_instances),
                },
            },
            # A plain dict, not web.SiteConfigArgs: SiteConfigArgs fills in
            # netFrameworkVersion v4.6, which Flex rejects (pulumi-azure-native#4168); WebApp
            # passes a dict through untouched. Only what Flex accepts, as azurerm's
            # function_app_flex_consumption sends it (ExpandSiteConfigFunctionFlexConsumptionApp):
            # min TLS, SCM min TLS, HTTP/2, app settings. No ftpsState: Flex has no FTP and
            # answers 400 "...site configuration properties (Site.SiteConfig.FtpsState, ...) for
            # Flex Consumption sites is invalid" (Azure/azure-cli#31414; deprecation table in
            # MicrosoftDocs functions-app-settings.md). policy/rules/flex_site_config.py lists
            # every refused property. FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION and
            # WEBSITE_RUN_FROM_PACKAGE are deliberately absent: Flex rejects or ignores them.
            site_config={
                "app_settings": [
                    {"name": key, "value": value} for key, value in sorted(settings.items())
                ],
                "min_tls_version": web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2,
                "scm_min_tls_version": web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2,
                "http20_enabled": True,
            },
            tags=tags,
            opts=child,
        )
        if args.identity == "SystemAssigned":
            principal_id = app.identity.apply(lambda i: i.principal_id if i else "")

        # Basic-auth publishing credentials (an SCM user/password) off: deployments use Entra
        # tokens only. Flex has no FTP endpoint, so there is no FTP policy to set: azurerm's
        # function_app_flex_consumption calls only UpdateScmAllowed.
        web.WebAppScmAllowed(
            f"{name}-no-basic-auth-scm",
            name=app.name,
            resource_group_name=args.resource_group_name,
            allow=False,
            opts=child,
        )

        # The host keeps its locks, keys and deployment package in its own account; Owner there
        # and nowhere else keeps "Reader" meaningful on the data account.
        self.host_role_assignment = assign_role(
            f"{name}-host-blob-owner",
            scope=args.host_account_id,
            principal_id=principal_id,
            role=AzureRole.STORAGE_BLOB_DATA_OWNER,
            subscription_id=args.subscription_id,
            parent=self,
        )

        self.app = app
        self.principal_id = principal_id
        self.client_id = client_id
        self.app_id = app.id
        self.app_name = app.name
        self.default_host_name = app.default_host_name
        self.scm_host_name = app.host_name_ssl_states.apply(scm_host)
        self.deployment: FlexDeployment | None = None
        self._name = name
        self._args = args
        self.register_outputs(
            {
                "principal_id": self.principal_id,
                "client_id": self.client_id,
                "app_id": self.app_id,
                "app_name": self.app_name,
                "default_host_name": self.default_host_name,
                "scm_host_name": self.scm_host_name,
            }
        )

    def deploy(self, after: Sequence[pulumi.Resource] = ()) -> FlexDeployment | None:
        """Deploy `args.package` with One Deploy once the app, its host role and `after` exist.

        Flex pulls the package with the app's identity from its deployment container, so the host
        role assignment is created first. `after` holds the other grants the app's identity uses
        from its first start (Monitoring Metrics Publisher); they name the app's principal id, so
        they can only be made after this component and are passed here. `depends_on` orders only
        their creation: Azure RBAC can take minutes to apply a new assignment, so the first
        telemetry may still be refused briefly (the package upload's own 403 is retried by
        shipping/onedeploy.py). Call it once; without a package it does nothing.
        """
        if self._args.package is None or self.deployment is not None:
            return self.deployment
        self.deployment = FlexDeployment(
            f"{self._name}-deploy",
            FlexDeploymentArgs(
                resource_group=self._args.resource_group_name,
                app_name=self.app.name,
                app_id=self.app.id,
                scm_host=self.scm_host_name,
                # The HTTP routes function_src/function_app.py serves; the deployment is
                # confirmed only once ARM lists all of them.
                functions=FUNCTION_ROUTES,
                package_path=str(self._args.package.path),
                package_sha256=self._args.package.sha256,
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.app, self.host_role_assignment, *after]
            ),
        )
        return self.deployment


def _always_ready(instances: int) -> dict[str, object]:
    """`http` names the group of every HTTP-triggered function (MicrosoftDocs
    flex-consumption-how-to.md, "Set always ready instance counts"). Nothing is sent for 0: the
    site is PUT whole, so leaving the list out also removes an earlier always-ready count.
    """
    if not instances:
        return {}
    return {"always_ready": [{"name": "http", "instance_count": instances}]}
