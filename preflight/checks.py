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
- The deployer's rights that can be read: `GET {scope}/providers/Microsoft.Authorization/
  permissions` (api-version 2022-04-01) lists the caller's effective actions and notActions at
  the subscription, where the program creates its resource group; each action the program needs
  is evaluated with Azure RBAC's wildcards. Data actions and Entra (Graph) rights cannot be read
  this way; README "Prerequisites" lists them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

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
    "Microsoft.Resources/subscriptions/resourceGroups/write",
    "Microsoft.Storage/storageAccounts/write",
    "Microsoft.Web/serverfarms/write",
    "Microsoft.Web/sites/write",
    "Microsoft.ManagedIdentity/userAssignedIdentities/write",
    "Microsoft.OperationalInsights/workspaces/write",
    "Microsoft.Insights/components/write",
    "Microsoft.Insights/diagnosticSettings/write",
    "Microsoft.Authorization/roleAssignments/write",
)
"""ARM actions of the program's resources (its role assignments need the last one: Owner, User
Access Administrator or Role Based Access Control Administrator; Contributor excludes it)."""

_BUSY = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


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
        url = f"{self.endpoint}{self.subscription}{path}"
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
    error = body.get("error", {}) if isinstance(body, dict) else {}
    what = f"HTTP {status}" if status else "no answer"
    return f"{what}: {excerpt(str(error.get('message') or error.get('code') or body))}"


def providers_registered(arm: Arm, namespaces: Sequence[str] = REQUIRED_PROVIDERS) -> list[Check]:
    checks = []
    for namespace in namespaces:
        status, body = arm.get(f"/providers/{namespace}", **{"api-version": PROVIDERS_API})
        state = body.get("registrationState") if status == 200 else None
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
    if status != 200 or not isinstance(body.get("value"), list):
        return Check(name, False, _refusal(status, body))
    offered = sorted(
        {
            normalize_location(str(region.get("name", "")))
            for region in body["value"]
            if isinstance(region, dict)
        }
    )
    if normalize_location(location) in offered:
        return Check(name, True, "offered")
    return Check(name, False, f"not offered; this subscription may use: {', '.join(offered)}")


def _allowed(action: str, permissions: Iterable[dict[str, Any]]) -> bool:
    """Azure RBAC: an action is allowed by a permission when it matches one of its `actions`
    and none of its `notActions` (case-insensitive, `*` wildcards); any permission may allow."""
    action = action.lower()

    def match(patterns: Any) -> bool:
        return any(fnmatchcase(action, str(p).lower()) for p in patterns or ())

    return any(match(p.get("actions")) and not match(p.get("notActions")) for p in permissions)


def deployer_rights(arm: Arm, actions: Sequence[str] = REQUIRED_ACTIONS) -> Check:
    status, body = arm.get(
        "/providers/Microsoft.Authorization/permissions", **{"api-version": PERMISSIONS_API}
    )
    name = "deployer's rights on the subscription"
    if status != 200 or not isinstance(body.get("value"), list):
        return Check(name, False, _refusal(status, body))
    permissions = [p for p in body["value"] if isinstance(p, dict)]
    missing = [action for action in actions if not _allowed(action, permissions)]
    if not missing:
        return Check(name, True, f"all {len(actions)} actions the program needs")
    return Check(
        name,
        False,
        "missing " + ", ".join(missing) + " (role assignments need Owner, User Access "
        "Administrator or Role Based Access Control Administrator besides Contributor)",
    )


def run_checks(arm: Arm, location: str) -> list[Check]:
    """Every check; one failing never stops the others."""
    return [*providers_registered(arm), flex_offered(arm, location), deployer_rights(arm)]


def arm_client(
    credential: Any, endpoint: str, subscription_id: str, timeout: tuple[float, float]
) -> Arm:
    reader = Reader(requests.Session(), BearerToken(credential), timeout)
    return Arm(reader, endpoint, subscription_id)
