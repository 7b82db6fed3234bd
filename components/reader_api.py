"""The reader API: the Entra application whose access tokens open the function apps' front door.

Callers (people, applications, managed identities) sign in with Entra ID and present a token for
this application; the function checks it in code (function_src/crosscloud_fn/caller_auth.py).
It is deliberately NOT the federation app: a token for this audience is useless to AWS, and
holding this app's role never yields a token for the AWS audience.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_azuread as azuread

from components import trust

CALLER_ROLE_VALUE = "CrossCloud.Read"
"""The app role a caller must hold (`roles` claim); the function's CROSSCLOUD_CALLER_ROLE."""
SCOPE_VALUE = "user_impersonation"
"""The delegated scope a person's token carries (`scp`). App roles and scopes share one
namespace, so it cannot also be `CrossCloud.Read`."""
AZURE_CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
"""The Azure CLI's public client id (Azure/azure-cli,
src/azure-cli-core/azure/cli/core/auth/identity.py: `AZURE_CLI_CLIENT_ID`): what
`az account get-access-token --resource <audience>` asks Entra as."""


@dataclass(frozen=True)
class ReaderApiArgs:
    """Inputs of `ReaderApi`."""

    display_name: str
    """Display name of the application and its service principal."""
    tenant_id: str
    """Entra tenant id: the identifier URI contains it, so new tenants accept it."""
    app_role_id: str
    """Stable GUID of the `CrossCloud.Read` app role (see naming.py)."""
    scope_id: str
    """Stable GUID of the delegated `user_impersonation` scope (see naming.py)."""
    callers: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Object ids (users, groups, service principals, managed identities) given the role, by a
    stable key used in resource names."""
    owner_object_ids: Sequence[str] = ()
    """Owners of the app and service principal; the deployer, so later runs can update them."""


class ReaderApi(pulumi.ComponentResource):
    """Application + service principal with "assignment required", one app role for
    applications and users, and a delegated scope pre-authorized for the Azure CLI.

    - Assignment required: Entra refuses a token to anyone not assigned the role (AADSTS501051
      for apps, AADSTS50105 for people), so the front door sees only assigned callers; it still
      checks `roles` itself.
    - v1 tokens (`requested_access_token_version=1`): `iss = https://sts.windows.net/{tid}/`,
      `aud` = the identifier URI, the form the function's settings name first.
    - The Azure CLI is pre-authorized for the scope: a person's `az account get-access-token
      --resource <audience>` needs no consent prompt (terraform-provider-azuread
      `azuread_application_pre_authorized`, pulumi_azuread/application_pre_authorized.py).
      The scope is admin-consent only: no user can consent some other client onto this API.
    """

    client_id: pulumi.Output[str]
    audience: pulumi.Output[str]
    service_principal_object_id: pulumi.Output[str]
    app_role_id: str
    role: str
    """The app role's value, `CrossCloud.Read`."""

    def __init__(
        self,
        name: str,
        args: ReaderApiArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("crosscloud:reader_api:ReaderApi", name, None, opts)
        self._name = name
        self.app_role_id = args.app_role_id
        self.role = CALLER_ROLE_VALUE
        owners = list(args.owner_object_ids)
        # api://{tenantId}/{name}: the federation audience's default form, which tenants with the
        # 2025 URI policy accept ("must contain a tenant verified domain, tenant ID, or app ID").
        # Known in advance, so it is set on the app itself: no ApplicationIdentifierUri, no
        # ignore_changes needed.
        uri = trust.tenant_audience(args.tenant_id, args.display_name.replace(" ", "-"))
        app = azuread.Application(
            f"{name}-app",
            display_name=args.display_name,
            sign_in_audience="AzureADMyOrg",
            prevent_duplicate_names=True,
            owners=owners,
            identifier_uris=[uri],
            api=azuread.ApplicationApiArgs(
                requested_access_token_version=1,
                oauth2_permission_scopes=[
                    azuread.ApplicationApiOauth2PermissionScopeArgs(
                        id=args.scope_id,
                        value=SCOPE_VALUE,
                        type="Admin",
                        enabled=True,
                        admin_consent_display_name="Read through the cross-cloud reader API",
                        admin_consent_description="Lets a signed-in person call the cross-cloud "
                        "reader functions; they must also hold the CrossCloud.Read role.",
                    )
                ],
            ),
            app_roles=[
                azuread.ApplicationAppRoleArgs(
                    id=args.app_role_id,
                    value=CALLER_ROLE_VALUE,
                    display_name=CALLER_ROLE_VALUE,
                    description="Call the cross-cloud reader functions (list, read, whoami).",
                    # Applications (apps, managed identities) and users (people, and groups
                    # whose members are people) may hold it.
                    allowed_member_types=["Application", "User"],
                    enabled=True,
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        # A separate resource, as the provider wants it: the Application's own updates send
        # `api` without `preAuthorizedApplications` (terraform-provider-azuread,
        # internal/services/applications/applications.go `expandApplicationApi`), so they do
        # not carry, and are not meant to manage, the pre-authorization.
        azuread.ApplicationPreAuthorized(
            f"{name}-azure-cli",
            application_id=app.id,
            authorized_client_id=AZURE_CLI_CLIENT_ID,
            permission_ids=[args.scope_id],
            opts=pulumi.ResourceOptions(parent=self),
        )
        service_principal = azuread.ServicePrincipal(
            f"{name}-sp",
            client_id=app.client_id,
            app_role_assignment_required=True,
            owners=owners,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._service_principal = service_principal
        for key, principal_id in args.callers.items():
            self.assign(key, principal_id)
        self.client_id = app.client_id
        self.audience = pulumi.Output.from_input(uri)
        self.service_principal_object_id = service_principal.object_id
        self.register_outputs(
            {
                "client_id": self.client_id,
                "audience": self.audience,
                "service_principal_object_id": self.service_principal_object_id,
            }
        )

    def assign(self, key: str, principal_object_id: pulumi.Input[str]) -> azuread.AppRoleAssignment:
        """Give `CrossCloud.Read` to a user, group or service principal (any type: Graph's
        appRoleAssignedTo takes the object id alone; pulumi_azuread/app_role_assignment.py:
        "Supported object types are Users, Groups or Service Principals")."""
        return azuread.AppRoleAssignment(
            f"{self._name}-caller-{key}",
            app_role_id=self.app_role_id,
            principal_object_id=principal_object_id,
            resource_object_id=self._service_principal.object_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
