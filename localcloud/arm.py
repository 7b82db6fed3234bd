"""A fake Azure Resource Manager endpoint that answers one call: the function app's host keys.

`make verify` gets a function key the way an operator does against Azure:
`POST {arm}/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Web/sites/{app}`
`/host/default/listkeys?api-version=...` with a bearer token for `https://management.azure.com`,
and gets `{"masterKey": ..., "functionKeys": {"default": ...}, "systemKeys": {}}`.

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

    # ---- the one operation ---------------------------------------------------------------------

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
        site = self._site(url.path) if method == "POST" else None
        if site is None:
            return self._log(
                url.path,
                principal,
                404,
                _error("ResourceNotFound", f"No resource or operation at {url.path}."),
            )
        if principal not in self.operators:
            return self._log(
                url.path,
                principal,
                403,
                _error(
                    "AuthorizationFailed",
                    f"The client with object id '{principal}' does not have authorization to "
                    "perform action 'Microsoft.Web/sites/host/listkeys/action' over scope "
                    f"'{url.path.rsplit('/host/', 1)[0]}'.",
                ),
            )
        keys = self.sites[site]
        return self._log(
            url.path,
            principal,
            200,
            {"masterKey": keys.master, "functionKeys": {"default": keys.default}, "systemKeys": {}},
        )

    def _authenticate(self, authorization: str | None) -> tuple[str | None, str | None]:
        token = bearer_token(authorization)
        if token is None:
            return None, "Authentication information is not given in the correct format."
        try:
            claims = signed_claims(
                token,
                self.jwks,
                audience=list(MANAGEMENT_AUDIENCES),
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "oid"]},
            )
        except (jwt.PyJWTError, KeyError) as error:
            return None, f"The access token is invalid ({type(error).__name__})."
        return str(claims["oid"]), None

    def _site(self, path: str) -> str | None:
        """The app named by a listkeys path in this subscription and resource group, else None.
        ARM matches the fixed segments case-insensitively."""
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if len(parts) != 11:
            return None
        fixed = [parts[i].lower() for i in (0, 2, 4, 5, 6, 8, 9, 10)]
        if fixed != [
            "subscriptions",
            "resourcegroups",
            "providers",
            "microsoft.web",
            "sites",
            "host",
            "default",
            "listkeys",
        ]:
            return None
        subscription, group, site = parts[1], parts[3], parts[7]
        if subscription.lower() != self.subscription_id.lower():
            return None
        if group.lower() != self.resource_group.lower():
            return None
        # App names are case-insensitive in Azure too.
        return next((name for name in self.sites if name.lower() == site.lower()), None)

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
                    self.rfile.read(length)  # listkeys has no body; drain whatever was sent
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
