"""What a fresh subscription needs before `pulumi up`, read through ARM with the operator's own
sign-in. Every call is a GET with a timeout, a bounded answer and one retry of a busy answer.

- Resource providers registered: azure-native does not register them (pulumi-azure-native#3479),
  and a fresh subscription refuses the monitoring resources until `Microsoft.Insights` and
  `Microsoft.OperationalInsights` are (`GET /subscriptions/{id}/providers/{namespace}`,
  `registrationState`).
- Flex Consumption offered in the location: `GET /subscriptions/{id}/providers/Microsoft.Web/
  geoRegions?sku=FlexConsumption` (api-version 2023-01-01), what `az functionapp
  list-flexconsumption-locations` and the VS Code Functions extension read; names such as
  "East US" compare as `eastus` (the az CLI lowercases them and drops spaces).
- The deployer's rights that can be read: `GET /subscriptions/{id}/providers/
  Microsoft.Authorization/permissions` (api-version 2022-04-01) lists the caller's permissions
  (actions, notActions, an ABAC `condition`) at the subscription, where the program creates its
  resource group, in pages joined by `nextLink`. The REST reference documents this list only for
  a resource group and a resource (Permissions - List For Resource Group / List For Resource);
  the subscription form is not in the REST spec, but ARM answers it and Microsoft's ARM
  authentication tutorial ("Use Resource Manager authentication API to access subscriptions",
  azure-docs articles/azure-resource-manager/resource-manager-api-authentication.md) calls it
  to check a user's access. Each action the program needs is evaluated with Azure RBAC's
  wildcards; a permission with a condition, or a listing cut short, leaves an action "unknown,
  check manually", never granted. Deny assignments, data actions and Entra (Graph) rights are not
  read; docs/permissions.md lists the rights.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

import requests

from shipping.deployment_reads import BearerToken, Reader, excerpt

PROVIDERS_API = "2021-04-01"
WEB_API = "2023-01-01"
PERMISSIONS_API = "2022-04-01"

REQUIRED_PROVIDERS = (
    "Microsoft.Web",
    "Microsoft.Storage",
    "Microsoft.Insights",
    "Microsoft.OperationalInsights",
    "Microsoft.ManagedIdentity",
)
"""Namespaces of the resources the program creates (Microsoft.Authorization and
Microsoft.Resources are registered in every subscription)."""

REQUIRED_ACTIONS = (
    # resources.ResourceGroup
    "Microsoft.Resources/subscriptions/resourceGroups/write",
    # storage.StorageAccount, storage.BlobContainer (data containers, Flex deployment container)
    "Microsoft.Storage/storageAccounts/write",
    "Microsoft.Storage/storageAccounts/blobServices/containers/write",
    # web.AppServicePlan, web.WebApp, web.WebAppScmAllowed (the `scm` basic-auth policy)
    "Microsoft.Web/serverfarms/write",
    "Microsoft.Web/sites/write",
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies/write",
    # managedidentity.UserAssignedIdentity, and attaching it to the app: "You'll also need
    # Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action" (MicrosoftDocs
    # how-manage-user-assigned-managed-identities; the Managed Identity Operator role's action)
    "Microsoft.ManagedIdentity/userAssignedIdentities/write",
    "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
    # operationalinsights.Workspace, applicationinsights.Component, monitor.DiagnosticSetting
    "Microsoft.OperationalInsights/workspaces/write",
    "Microsoft.Insights/components/write",
    "Microsoft.Insights/diagnosticSettings/write",
    # authorization.RoleAssignment
    "Microsoft.Authorization/roleAssignments/write",
    # shipping/onedeploy.py: POST /api/publish and GET /api/deployments/{id} on the SCM site
    # with the ARM token ("The assigned role must include permission for the
    # Microsoft.Web/sites/publish/Action resource provider operation", MicrosoftDocs app-service
    # resources-kudu), then shipping/deployment_reads.py: GET {app id}/functions (ARM
    # WebApps_ListFunctions)
    "Microsoft.Web/sites/publish/Action",
    "Microsoft.Web/sites/functions/read",
)
"""ARM actions of the program's resources and of its One Deploy calls. Role assignments need
Owner, User Access Administrator or Role Based Access Control Administrator; Contributor excludes
`roleAssignments/write`."""

MAX_PERMISSION_PAGES = 10

_BUSY = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    unknown: bool = False
    """Not ok because it cannot be told from what ARM answers (check it by hand)."""


class Arm:
    """GETs against ARM with a (connect, read) timeout, a bounded body and one retry of a busy
    answer or a dropped connection."""

    def __init__(
        self,
        reader: Reader,
        endpoint: str,
        subscription_id: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.reader, self.endpoint, self.sleep = reader, endpoint.rstrip("/"), sleep
        self.subscription = f"/subscriptions/{subscription_id}"

    def get(self, path: str, **params: str) -> tuple[int, Any]:
        return self.get_url(f"{self.endpoint}{self.subscription}{path}", params)

    def same_origin(self, url: Any) -> bool:
        """Only ARM itself gets the token: a link with the endpoint's scheme, host and port,
        and https unless the endpoint is not (tests' loopback fakes; the CLI refuses that)."""
        if not isinstance(url, str):
            return False
        link, own = urlsplit(url), urlsplit(self.endpoint)
        https = link.scheme == "https" or own.scheme != "https"
        return https and (link.scheme, link.netloc) == (own.scheme, own.netloc)

    def get_url(self, url: str, params: dict[str, str] | None) -> tuple[int, Any]:
        for attempt in (1, 2):
            try:
                response, text = self.reader.get(url, params)
            except requests.RequestException as error:
                if attempt == 2:
                    return 0, {"error": {"message": excerpt(str(error))}}
                self.sleep(1.0)
                continue
            if response.status_code in _BUSY and attempt == 1:
                self.sleep(1.0)
                continue
            try:
                return response.status_code, json.loads(text) if text else {}
            except json.JSONDecodeError:
                return response.status_code, {"error": {"message": excerpt(text)}}
        raise AssertionError("unreachable")


def _refusal(status: int, body: Any) -> str:
    what = f"HTTP {status}" if status else "no answer"
    if status == 200:
        return f"{what} but not the expected JSON object: {excerpt(json.dumps(body))}"
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    return f"{what}: {excerpt(str(error.get('message') or error.get('code') or body))}"


def _object(status: int, body: Any) -> dict[str, Any] | None:
    """A 200 answer's JSON object, else None (a list or a string is no answer either)."""
    return body if status == 200 and isinstance(body, dict) else None


def providers_registered(arm: Arm, namespaces: Sequence[str] = REQUIRED_PROVIDERS) -> list[Check]:
    checks = []
    for namespace in namespaces:
        status, body = arm.get(f"/providers/{namespace}", **{"api-version": PROVIDERS_API})
        answer = _object(status, body)
        state = answer.get("registrationState") if answer is not None else None
        if state == "Registered":
            checks.append(Check(f"provider {namespace}", True, "registered"))
            continue
        detail = f"state {state}" if state else _refusal(status, body)
        checks.append(
            Check(
                f"provider {namespace}",
                False,
                f"{detail}; run: az provider register --namespace {namespace} --wait",
            )
        )
    return checks


def normalize_location(name: str) -> str:
    """ARM's display name ("East US 2") as a location name (`eastus2`), as the az CLI does."""
    return name.lower().replace(" ", "")


def flex_offered(arm: Arm, location: str) -> Check:
    status, body = arm.get(
        "/providers/Microsoft.Web/geoRegions", sku="FlexConsumption", **{"api-version": WEB_API}
    )
    name = f"Flex Consumption in {location}"
    answer = _object(status, body)
    if answer is None or not isinstance(answer.get("value"), list):
        return Check(name, False, _refusal(status, body))
    offered = sorted(
        {
            normalize_location(str(region.get("name", "")))
            for region in answer["value"]
            if isinstance(region, dict)
        }
    )
    if normalize_location(location) in offered:
        return Check(name, True, "offered")
    return Check(name, False, f"not offered; this subscription may use: {', '.join(offered)}")


def _allows(action: str, permission: dict[str, Any]) -> bool:
    """Azure RBAC: a permission allows an action that matches one of its `actions` and none of
    its `notActions` (case-insensitive, `*` wildcards)."""
    action = action.lower()

    def match(patterns: Any) -> bool:
        patterns = patterns if isinstance(patterns, list) else ()
        return any(fnmatchcase(action, str(p).lower()) for p in patterns)

    return match(permission.get("actions")) and not match(permission.get("notActions"))


def _conditioned(permission: dict[str, Any]) -> bool:
    """An ABAC condition (e.g. which roles an RBAC administrator may assign) limits the grant
    in ways this list does not show."""
    return bool(permission.get("condition"))


def _permissions(arm: Arm) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """The caller's permissions on the subscription, every page up to `MAX_PERMISSION_PAGES`;
    a `nextLink` is followed only on ARM itself. Returns (permissions, refusal, why the listing
    is incomplete)."""
    status, body = arm.get(
        "/providers/Microsoft.Authorization/permissions", **{"api-version": PERMISSIONS_API}
    )
    permissions: list[dict[str, Any]] = []
    for page in range(1, MAX_PERMISSION_PAGES + 1):
        answer = _object(status, body)
        if answer is None or not isinstance(answer.get("value"), list):
            if page == 1:
                return [], _refusal(status, body), None
            return permissions, None, f"page {page} of the list: {_refusal(status, body)}"
        permissions.extend(p for p in answer["value"] if isinstance(p, dict))
        link = answer.get("nextLink")
        if not link:
            return permissions, None, None
        if not arm.same_origin(link):
            return permissions, None, f"a nextLink off ARM was not followed: {excerpt(str(link))}"
        if page < MAX_PERMISSION_PAGES:
            status, body = arm.get_url(link, None)  # a nextLink carries its own query
    return permissions, None, f"more than {MAX_PERMISSION_PAGES} pages"


def deployer_rights(arm: Arm, actions: Sequence[str] = REQUIRED_ACTIONS) -> Check:
    name = "deployer's rights on the subscription"
    permissions, refusal, incomplete = _permissions(arm)
    if refusal is not None:
        return Check(name, False, refusal)
    plain = [p for p in permissions if not _conditioned(p)]
    conditioned = [p for p in permissions if _conditioned(p)]
    granted = [a for a in actions if any(_allows(a, p) for p in plain)]
    unsure = [
        a
        for a in actions
        if a not in granted and (incomplete or any(_allows(a, p) for p in conditioned))
    ]
    missing = [a for a in actions if a not in granted and a not in unsure]
    if missing:
        return Check(
            name,
            False,
            "missing " + ", ".join(missing) + " (role assignments need Owner, User Access "
            "Administrator or Role Based Access Control Administrator besides Contributor)"
            + (f"; unknown, check manually: {', '.join(unsure)}" if unsure else ""),
        )
    if unsure:
        why = incomplete or "granted only by a permission with an ABAC condition"
        return Check(
            name, False, f"unknown, check manually: {', '.join(unsure)} ({why})", unknown=True
        )
    return Check(
        name,
        True,
        f"the {len(actions)} actions checked are granted (deny assignments are not evaluated; "
        "conditioned grants do not count; data actions and Entra rights are not read)",
    )


def run_checks(arm: Arm, location: str) -> list[Check]:
    """Every check; one failing never stops the others."""
    return [*providers_registered(arm), flex_offered(arm, location), deployer_rights(arm)]


def arm_client(
    credential: Any, endpoint: str, subscription_id: str, timeout: tuple[float, float]
) -> Arm:
    reader = Reader(requests.Session(), BearerToken(credential), timeout)
    return Arm(reader, endpoint, subscription_id)
