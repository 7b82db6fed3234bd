"""Who runs `pulumi up`: the principal type ARM needs in the deployer's own role assignment.

`authorization.RoleAssignment` turns `principal_type=None` into `'User'` (see
`pulumi_azure_native/authorization/role_assignment.py`), and ARM refuses an assignment whose
principal type does not match the principal ("UnmatchedPrincipalType"). A CI service principal or
managed identity would then fail `pulumi up`. So the type is looked up in Entra ID, or given by
`crosscloud:deployerPrincipalType`, and never left to the SDK's default.

The lookup asks only for the deployer's own object, which needs no Graph permission beyond what
docs/permissions.md already lists:
- first as a service principal, `azuread.get_service_principal(object_id=...)`: Graph
  `GET /servicePrincipals/{id}` (terraform-provider-azuread v3.x,
  internal/services/serviceprincipals/service_principal_data_source.go: a GET by id, then a GET
  of the same object on /beta for `samlMetadataUrl`; no `$filter` list). "A service principal can
  retrieve its own application and service principal details without being granted any
  application permissions" (https://learn.microsoft.com/graph/api/serviceprincipal-get, v1.0 and
  beta). A managed identity is a service principal too. A signed-in user may read service
  principals with the default user permissions (same page), and asking for a user's id answers
  "not found";
- then, only on that "not found", as a user, `azuread.get_user(object_id=...)`: Graph
  `GET /users/{id}` (users/user_data_source.go: a GET by id, a GET of the same user with
  `$select`, and its manager), which a signed-in user may do for itself with User.Read
  (https://learn.microsoft.com/graph/api/resources/users, "Authorization and privileges").
Groups and devices never sign in, so they are not deployers; both lookups say "not found" for
them and the run stops.
"""

from __future__ import annotations

from typing import Literal

import pulumi
import pulumi_azuread as azuread

PrincipalType = Literal["User", "ServicePrincipal"]
"""ARM's `principalType` values a deployer can have (Microsoft.Authorization/roleAssignments)."""

OVERRIDE_KEY = "crosscloud:deployerPrincipalType"

_OVERRIDES: dict[str, PrincipalType] = {"User": "User", "ServicePrincipal": "ServicePrincipal"}

# How the azuread provider says "no service principal with this id": the data source answers a
# 404 with `tf.ErrorDiagPathF(nil, "object_id", "%s was not found", id)`, and go-azure-sdk's
# ServicePrincipalId prints as `Service Principal (Service Principal: "<id>")`
# (microsoft-graph/common-types/stable/id_serviceprincipal.go). The bridge keeps the summary in
# the invoke's error (pulumi-terraform-bridge pkg/tfshim/diagnostics/error.go). A 403 or an
# outage reads "Retrieving Service Principal (...): unexpected status 403 ..." instead.
_SP_NOT_FOUND = 'Service Principal (Service Principal: "{}") was not found'
# users/user_data_source.go: `"User not found with object ID: %q"` on a 404.
_USER_NOT_FOUND = 'User not found with object ID: "{}"'


class DeployerLookupError(pulumi.RunError):
    """The deployer's principal type could not be found out; the message says what to set. A
    `RunError`: Pulumi prints the message without a traceback."""


def _lookup_failed(object_id: str, why: str) -> DeployerLookupError:
    return DeployerLookupError(
        f"cannot tell whether the deploying principal {object_id} is a user or a service "
        f"principal: {why}. Set {OVERRIDE_KEY} to User or ServicePrincipal "
        f"(`pulumi config set {OVERRIDE_KEY} ServicePrincipal` for CI) to skip the lookup; "
        'see docs/permissions.md, "The deployer of a stack".'
    )


def deployer_principal_type(object_id: str, override: str | None) -> PrincipalType:
    """The deployer's ARM principal type: `override` when set, else looked up in Entra ID.

    The deployer is asked about its own object only (see the module docstring): as a service
    principal first, then, if Entra ID has no service principal with that id, as a user. Any
    other failure (403, an outage, neither found) raises DeployerLookupError naming the override
    key. Call this before registering any resource, so a failed lookup stops the run before
    anything changes.
    """
    if override is not None:
        # Settings already allowed only User or ServicePrincipal; no lookup, no Graph call.
        return _OVERRIDES[override]
    try:
        azuread.get_service_principal(object_id=object_id)
    # The engine reports any provider failure as a plain Exception "invoke of ... failed: ...".
    except Exception as error:
        if _SP_NOT_FOUND.format(object_id) not in str(error):
            raise _lookup_failed(
                object_id, f"reading it as a service principal failed ({error})"
            ) from error
    else:
        return "ServicePrincipal"
    try:
        azuread.get_user(object_id=object_id)
    except Exception as error:
        if _USER_NOT_FOUND.format(object_id) in str(error):
            why = "Entra ID has no service principal and no user with that object id"
        else:
            why = f"it is no service principal, and reading it as a user failed ({error})"
        raise _lookup_failed(object_id, why) from error
    return "User"
