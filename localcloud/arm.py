"""A fake Azure Resource Manager endpoint for a function app: its host keys and its functions.

The platform still has function keys, and an operator could list them as against Azure (nothing
on a user's path does: the apps' routes want an Entra token, docs/callers.md):
`POST {arm}/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Web/sites/{app}`
`/host/default/listkeys?api-version=...` with a bearer token for `https://management.azure.com`,
and gets `{"masterKey": ..., "functionKeys": {"default": ...}, "systemKeys": {}}`.

One Deploy confirms a deployment with `GET .../sites/{app}/functions?api-version=...`
(WebApps_ListFunctions, what `az functionapp function list` reads): `{"value": [envelope...]}`,
each envelope named `{app}/{function}` with `properties.invoke_url_template`. An app lists
nothing until a deployment makes it index functions (`index()`, called by the fake SCM site).

As ARM does, it refuses a missing or invalid token (401 `InvalidAuthenticationToken`: RS256
signature against the fake Entra's JWKS, issuer of the tenant, management audience, expiry), a
caller without a role on the app (403 `AuthorizationFailed`; listing keys needs Website
Contributor or Contributor, which only `operators` hold here), and an unknown app (404).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt

from localcloud.bearer import bearer_token, signed_claims
from localcloud.certs import TlsFiles
from localcloud.https import LoopbackHttpsServer, LoopbackService, QuietHandler
from localcloud.net import LOOPBACK

# Entra v1 tokens carry the resource as asked for; clients ask with or without the slash.
MANAGEMENT_AUDIENCES = ("https://management.azure.com", "https://management.azure.com/")


@dataclass(frozen=True)
class SiteKeys:
    master: str
    default: str


@dataclass(frozen=True)
class ArmCall:
    path: str
    principal_id: str | None
    status: int


def management_principal(
    authorization: str | None, keys: jwt.PyJWKSet, issuer: str
) -> tuple[str | None, str | None]:
    """(object id, None) for a valid ARM token, else (None, why it is refused).

    Checks what ARM checks: RS256 signature against the tenant's keys, issuer, the management
    audience, expiry. The SCM site of an app accepts the same tokens.
    """
    token = bearer_token(authorization)
    if token is None:
        return None, "Authentication information is not given in the correct format."
    try:
        claims = signed_claims(
            token,
            keys,
            audience=list(MANAGEMENT_AUDIENCES),
            issuer=issuer,
            options={"require": ["exp", "iss", "aud", "oid"]},
        )
    except (jwt.PyJWTError, KeyError) as error:
        return None, f"The access token is invalid ({type(error).__name__})."
    return str(claims["oid"]), None


class FakeArm(LoopbackService):
    """Context manager: `with FakeArm(tls, ...) as arm: arm.base_url`."""

    _thread_name = "fake-arm"

    def __init__(
        self,
        tls: TlsFiles,
        *,
        jwks: dict[str, Any],
        issuer: str,
        subscription_id: str,
        resource_group: str,
        sites: Mapping[str, SiteKeys],
        operators: set[str],
    ) -> None:
        self.tls = tls
        self.jwks = jwt.PyJWKSet.from_dict(jwks)
        self.issuer = issuer
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.sites = dict(sites)
        self.operators = operators
        """Principal ids with Website Contributor (or Contributor) on the apps."""
        self._lock = threading.Lock()
        self._calls: list[ArmCall] = []
        self._functions: dict[str, dict[str, str]] = {}

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeArm is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"

    def calls(self) -> list[ArmCall]:
        with self._lock:
            return list(self._calls)

    def index(self, site: str, functions: Mapping[str, str]) -> None:
        """What the app's host loaded from its package: function name -> HTTP route."""
        with self._lock:
            self._functions[site] = dict(functions)

    def functions_of(self, site: str) -> dict[str, str]:
        with self._lock:
            return dict(self._functions.get(site, {}))

    # ---- the operations ------------------------------------------------------------------------

    def answer(self, method: str, target: str, authorization: str | None) -> tuple[int, dict]:
        """Status and JSON body for one request; every answer is logged with its caller."""
        url = urlsplit(target)
        principal, refusal = self._authenticate(authorization)
        if refusal:
            return self._log(
                url.path, principal, 401, _error("InvalidAuthenticationToken", refusal)
            )
        if not parse_qs(url.query).get("api-version"):
            return self._log(
                url.path,
                principal,
                400,
                _error(
                    "MissingApiVersionParameter", "The api-version query parameter is required."
                ),
            )
        site, operation = self._site(url.path)
        allowed = {"listkeys": "POST", "functions": "GET"}
        if site is None or allowed.get(operation) != method:
            return self._log(
                url.path,
                principal,
                404,
                _error("ResourceNotFound", f"No resource or operation at {url.path}."),
            )
        if principal not in self.operators:
            action = (
                "Microsoft.Web/sites/host/listkeys/action"
                if operation == "listkeys"
                else "Microsoft.Web/sites/functions/read"
            )
            scope = url.path.rsplit("/host/" if operation == "listkeys" else "/functions", 1)[0]
            return self._log(
                url.path,
                principal,
                403,
                _error(
                    "AuthorizationFailed",
                    f"The client with object id '{principal}' does not have authorization to "
                    f"perform action '{action}' over scope '{scope}'.",
                ),
            )
        if operation == "functions":
            return self._log(url.path, principal, 200, {"value": self._envelopes(site, url.path)})
        keys = self.sites[site]
        return self._log(
            url.path,
            principal,
            200,
            {"masterKey": keys.master, "functionKeys": {"default": keys.default}, "systemKeys": {}},
        )

    def _envelopes(self, site: str, functions_path: str) -> list[dict[str, Any]]:
        return [
            {
                "id": f"{functions_path}/{name}",
                "name": f"{site}/{name}",
                "type": "Microsoft.Web/sites/functions",
                "properties": {
                    "name": name,
                    "invoke_url_template": f"https://{site}.azurewebsites.net/api/{route}",
                    "language": "python",
                    "isDisabled": False,
                },
            }
            for name, route in sorted(self.functions_of(site).items())
        ]

    def _authenticate(self, authorization: str | None) -> tuple[str | None, str | None]:
        return management_principal(authorization, self.jwks, self.issuer)

    def _site(self, path: str) -> tuple[str | None, str]:
        """(app, operation) named by a listkeys or functions path in this subscription and
        resource group, else (None, ""). ARM matches the fixed segments case-insensitively."""
        parts = [unquote(p) for p in path.strip("/").split("/")]
        fixed = [parts[i].lower() for i in (0, 2, 4, 5, 6) if i < len(parts)]
        if len(parts) < 8 or fixed != [
            "subscriptions",
            "resourcegroups",
            "providers",
            "microsoft.web",
            "sites",
        ]:
            return None, ""
        tail = [part.lower() for part in parts[8:]]
        operation = {("host", "default", "listkeys"): "listkeys", ("functions",): "functions"}
        if tuple(tail) not in operation:
            return None, ""
        subscription, group, site = parts[1], parts[3], parts[7]
        if subscription.lower() != self.subscription_id.lower():
            return None, ""
        if group.lower() != self.resource_group.lower():
            return None, ""
        # App names are case-insensitive in Azure too.
        name = next((name for name in self.sites if name.lower() == site.lower()), None)
        return name, operation[tuple(tail)] if name else ""

    def _log(self, path: str, principal: str | None, status: int, body: dict) -> tuple[int, dict]:
        with self._lock:
            self._calls.append(ArmCall(path, principal, status))
        return status, body

    # ---- lifecycle -----------------------------------------------------------------------------

    def _handler(self) -> type[QuietHandler]:
        arm = self

        class Handler(QuietHandler):
            server_version = "FakeArm/1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)  # no operation here has a body; drain it
                status, body = arm.answer(
                    self.command, self.path, self.headers.get("Authorization")
                )
                self.send_json(status, body)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler

    def _make_server(self) -> LoopbackHttpsServer:
        # Port 0: the kernel picks one when the server binds; `port` reads it back.
        return LoopbackHttpsServer(0, self._handler(), self.tls)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "requestId": str(uuid.uuid4())}}
