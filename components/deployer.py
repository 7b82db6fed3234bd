"""Who runs `pulumi up`: the principal type ARM needs in the deployer's own role assignment.

`authorization.RoleAssignment` turns `principal_type=None` into `'User'` (see
`pulumi_azure_native/authorization/role_assignment.py`), and ARM refuses an assignment whose
principal type does not match the principal ("UnmatchedPrincipalType"). A CI service principal or
managed identity would then fail `pulumi up`. So the type is looked up in Entra ID, or given by
`crosscloud:deployerPrincipalType`, and never left to the SDK's default.
"""

from __future__ import annotations

from typing import Literal

import pulumi_azuread as azuread

PrincipalType = Literal["User", "ServicePrincipal", "Group"]
"""ARM's `principalType` values the program sends (Microsoft.Authorization/roleAssignments)."""

OVERRIDE_KEY = "crosscloud:deployerPrincipalType"

# The azuread provider shortens the object's OData type ("#microsoft.graph.servicePrincipal" ->
# "ServicePrincipal"; terraform-provider-azuread internal/services/directoryobjects). A managed
# identity is a servicePrincipal object too. ARM names these three the same way.
_ARM_TYPE_OF_DIRECTORY_TYPE: dict[str, PrincipalType] = {
    "User": "User",
    "ServicePrincipal": "ServicePrincipal",
    "Group": "Group",
}


class DeployerLookupError(RuntimeError):
    """The deployer's principal type could not be found out; the message says what to set."""


def _lookup_failed(object_id: str, why: str) -> DeployerLookupError:
    return DeployerLookupError(
        f"cannot tell whether the deploying principal {object_id} is a user or a service "
        f"principal: {why}. Set {OVERRIDE_KEY} to User or ServicePrincipal "
        f"(`pulumi config set {OVERRIDE_KEY} ServicePrincipal` for CI), or let the deployer read "
        "its own directory object (a CI service principal needs the Microsoft Graph application "
        "permission Directory.Read.All for that; see README, Prerequisites)."
    )


def deployer_principal_type(object_id: str, override: str | None) -> PrincipalType:
    """The deployer's ARM principal type: `override` when set, else looked up in Entra ID.

    The lookup is `azuread.get_directory_object` (Microsoft Graph `GET /directoryObjects/{id}`).
    A signed-in user may read the directory by default; a service principal needs Directory.Read.All
    (Graph's least-privileged permission for that call), which the override avoids. Call this
    before registering any resource, so a failed lookup stops the run before anything changes.
    """
    if override is not None:
        # Settings already allowed only User or ServicePrincipal; no lookup, no Graph call.
        return _ARM_TYPE_OF_DIRECTORY_TYPE[override]
    try:
        found = azuread.get_directory_object(object_id=object_id)
    # The engine reports any provider failure (403 Authorization_RequestDenied, a missing
    # object, a Graph outage) as a plain Exception "invoke of ... failed: ...".
    except Exception as error:
        raise _lookup_failed(object_id, f"the Entra ID lookup failed ({error})") from error
    arm_type = _ARM_TYPE_OF_DIRECTORY_TYPE.get(found.type or "")
    if arm_type is None:
        raise _lookup_failed(object_id, f"Entra ID says it is a {found.type!r}")
    return arm_type
