"""The Entra ID application whose tokens AWS trusts ("AWS-Federation-App")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_azuread as azuread

from components import trust
from components.settings import AudienceChoice
from components.validation import AUDIENCE_APP_ID, AUDIENCE_TENANT


@dataclass(frozen=True)
class FederationAppArgs:
    """Inputs of `FederationApp`."""

    display_name: str
    """Display name of the application and its service principal."""
    tenant_id: str
    """Entra tenant id, from the deployer's client config."""
    audience: AudienceChoice
    """How the identifier URI (the `aud` of the tokens AWS receives) is formed."""
    app_role_id: str
    """Stable GUID of the `AssumeAWSRole` app role (see naming.py)."""
    owner_object_ids: Sequence[str] = ()
    """Owners of the app and service principal; the deployer, so later runs can update them."""


class FederationApp(pulumi.ComponentResource):
    """Application + service principal with "assignment required" and one app role.

    Only identities assigned `AssumeAWSRole` (see `assign()`) can get a token for the audience:
    Entra refuses everyone else with AADSTS501051. Tokens stay v1 (`iss` =
    `https://sts.windows.net/{tenant}/`, `aud` = the identifier URI), which is what the AWS
    OIDC provider and trust policy are built for; v2 tokens change both claims.
    """

    client_id: pulumi.Output[str]
    audience: pulumi.Output[str]
    service_principal_object_id: pulumi.Output[str]
    app_role_id: str
    """Id of the `AssumeAWSRole` app role (what assignments name)."""
    audience_length: int
    """Length of the audience, known before it exists (sizes the AWS trust policy)."""
    audience_in_advance: str | None
    """The audience when it is known before the app exists (`tenant`, custom); None for
    `api://{appId}`."""

    def __init__(
        self,
        name: str,
        args: FederationAppArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("crosscloud:entra:FederationApp", name, None, opts)
        self._name = name
        self.app_role_id = args.app_role_id
        owners = list(args.owner_object_ids)
        app = azuread.Application(
            f"{name}-app",
            display_name=args.display_name,
            sign_in_audience="AzureADMyOrg",
            prevent_duplicate_names=True,
            owners=owners,
            api=azuread.ApplicationApiArgs(requested_access_token_version=1),
            app_roles=[
                azuread.ApplicationAppRoleArgs(
                    id=args.app_role_id,
                    value=trust.APP_ROLE_VALUE,
                    display_name=trust.APP_ROLE_VALUE,
                    description="Lets a managed identity get tokens that AWS exchanges for "
                    "the S3 read role.",
                    # Application only: managed identities are service principals, and no
                    # user should ever hold a token AWS would accept.
                    allowed_member_types=["Application"],
                    enabled=True,
                )
            ],
            # The identifier URI is its own ApplicationIdentifierUri resource (below). Its docs
            # (pulumi_azuread/application_identifier_uri.py): "When using these resources
            # together, you should use the `ignore_changes` lifecycle meta-argument". Without
            # it a `pulumi refresh` / `up --refresh` plans `identifierUris: []` for the app and
            # removes the audience, and every token request for it fails.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["identifierUris"]),
        )
        if args.audience.kind == AUDIENCE_TENANT:
            uri = trust.tenant_audience(args.tenant_id, args.display_name.replace(" ", "-"))
            audience: pulumi.Output[str] = pulumi.Output.from_input(uri)
            self.audience_length = len(uri)
            self.audience_in_advance = uri
        elif args.audience.kind == AUDIENCE_APP_ID:
            audience = app.client_id.apply(trust.app_id_audience)
            self.audience_length = len(trust.app_id_audience(args.app_role_id))  # any GUID
            self.audience_in_advance = None
        else:
            audience = pulumi.Output.from_input(args.audience.uri)
            self.audience_length = len(args.audience.uri)
            self.audience_in_advance = args.audience.uri
        # A separate resource so `api://{appId}` can refer to the app's own client id.
        identifier_uri = azuread.ApplicationIdentifierUri(
            f"{name}-identifier-uri",
            application_id=app.id,
            identifier_uri=audience,
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
        self.client_id = app.client_id
        # Consumers get the audience only once Entra knows the identifier URI.
        self.audience = identifier_uri.identifier_uri
        self.service_principal_object_id = service_principal.object_id
        self.register_outputs(
            {
                "client_id": self.client_id,
                "audience": self.audience,
                "service_principal_object_id": self.service_principal_object_id,
            }
        )

    def assign(self, key: str, principal_object_id: pulumi.Input[str]) -> azuread.AppRoleAssignment:
        """Assign `AssumeAWSRole` to a service principal (a managed identity's object id)."""
        return azuread.AppRoleAssignment(
            f"{self._name}-assign-{key}",
            app_role_id=self.app_role_id,
            principal_object_id=principal_object_id,
            resource_object_id=self._service_principal.object_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
