"""A TLS reverse proxy in front of Azurite that plays Azure Storage's authorisation layer.

Azurite (`--oauth basic`) authenticates bearer tokens by issuer prefix and audience only: it has no
role assignments and does not check signatures. The gate adds what the real service does before
that: it verifies the token's signature against the issuer's JWKS, then answers
`403 AuthorizationPermissionMismatch` (Azure's exact error) unless the token's `oid` holds a data
role - Storage Blob Data Reader for GET/HEAD, Contributor for writes. It also counts requests and
injects latency where a network round trip would be paid, at the fake.

Self-contained on purpose (no test imports): the local cloud can reuse it as is.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

from localcloud.bearer import bearer_token, signed_claims
from localcloud.certs import TlsFiles
from localcloud.https import LoopbackHttpsServer, LoopbackService, QuietHandler
from localcloud.net import LOOPBACK, free_port

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        # Set by our own server:
        "date",
        "server",
    }
)
_READ_METHODS = frozenset({"GET", "HEAD"})
UPSTREAM_ATTEMPTS = 2
"""Connections the gate tries per request before it gives up on its upstream (Azurite)."""


@dataclass(frozen=True)
class GateRequest:
    method: str
    path: str
    principal_id: str | None
    status: int | None
    """Set when the gate refused; None when Azurite answered."""
    at: float
    """`time.monotonic()` at arrival, before the injected latency."""


class BlobGate(LoopbackService):
    """Context manager: `with BlobGate(azurite.blob_endpoint, tls, jwks=...) as gate: ...`;
    point clients at `gate.endpoint`."""

    _thread_name = "blob-gate"

    def __init__(
        self,
        upstream: str,
        tls: TlsFiles,
        *,
        jwks: dict[str, Any],
        readers: set[str] | None = None,
        contributors: set[str] | None = None,
        latency: float = 0.0,
    ) -> None:
        target = urlsplit(upstream)
        self._upstream_host = target.hostname or LOOPBACK
        self._upstream_port = target.port or 443
        self.tls = tls
        self.jwks = jwt.PyJWKSet.from_dict(jwks)
        self.readers: set[str] = set() if readers is None else readers
        """Principal ids with Storage Blob Data Reader (mutable: tests grant and revoke)."""
        self.contributors: set[str] = set() if contributors is None else contributors
        """Principal ids with Storage Blob Data Contributor."""
        self.container_readers: dict[str, set[str]] = {}
        """Principal id -> containers it holds Storage Blob Data Reader on (the role assigned at
        container scope, `.../blobServices/default/containers/<name>`): nothing else."""
        self.latency = latency
        self.port = free_port()
        self.endpoint = f"https://{LOOPBACK}:{self.port}{target.path}"
        self._client_tls = ssl.create_default_context(cafile=str(tls.ca_cert))
        self._lock = threading.Lock()
        self._log: list[GateRequest] = []

    # ---- authorisation -------------------------------------------------------------------------

    def authorise(
        self, method: str, authorization: str | None, path: str = ""
    ) -> tuple[str | None, str | None]:
        """(principal id, refusal code or None). No bearer token: Azurite decides. `path` is the
        request's (`/<account>/<container>/...`), for roles assigned at container scope."""
        token = bearer_token(authorization)
        if token is None:
            return None, None
        try:
            claims = signed_claims(
                token,
                self.jwks,
                options={"verify_aud": False, "require": ["exp", "nbf", "oid"]},
            )
        except (jwt.PyJWTError, KeyError):
            return None, "AuthenticationFailed"
        principal = str(claims["oid"])
        with self._lock:
            container = urlsplit(path).path.strip("/").split("/")[1:2]
            scoped = bool(container) and container[0] in self.container_readers.get(principal, ())
            allowed = principal in self.contributors or (
                method in _READ_METHODS and (principal in self.readers or scoped)
            )
        return principal, None if allowed else "AuthorizationPermissionMismatch"

    # ---- counting ------------------------------------------------------------------------------

    def _record(self, entry: GateRequest) -> None:
        with self._lock:
            self._log.append(entry)

    @property
    def requests(self) -> int:
        with self._lock:
            return len(self._log)

    def request_log(self) -> list[GateRequest]:
        with self._lock:
            return list(self._log)

    def reset_counts(self) -> None:
        with self._lock:
            self._log.clear()

    # ---- proxying ------------------------------------------------------------------------------

    def _upstream(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self._upstream_host, self._upstream_port, context=self._client_tls, timeout=30
        )

    def _handler(self) -> type[QuietHandler]:
        gate = self

        class Handler(QuietHandler):
            server_version = "BlobGate/1"
            _conn: http.client.HTTPSConnection | None = None

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _proxy(self) -> None:
                arrived = time.monotonic()
                body = self._body()
                if gate.latency:
                    time.sleep(gate.latency)
                principal, refusal = gate.authorise(
                    self.command, self.headers.get("Authorization"), self.path
                )
                if refusal:
                    gate._record(GateRequest(self.command, self.path, principal, 403, arrived))
                    self._refuse(refusal)
                    return
                gate._record(GateRequest(self.command, self.path, principal, None, arrived))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                headers["Host"] = f"{gate._upstream_host}:{gate._upstream_port}"
                if body or "Content-Length" in self.headers:
                    headers["Content-Length"] = str(len(body))
                response = self._forward(headers, body)
                data = response.read()
                self.send_response(response.status, response.reason)
                for name, value in response.getheaders():
                    lower = name.lower()
                    if lower in _HOP_BY_HOP or (
                        lower == "content-length" and self.command != "HEAD"
                    ):
                        continue
                    self.send_header(name, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _forward(self, headers: dict[str, str], body: bytes) -> http.client.HTTPResponse:
                # A kept-alive upstream connection may have been closed, and a fresh one can fail
                # below ConnectionError too: ssl.SSLEOFError (Azurite closing mid-handshake) and
                # timeouts are OSErrors. Each gets one fresh connection more, never unbounded.
                for attempt in range(1, UPSTREAM_ATTEMPTS + 1):
                    if self._conn is None:
                        self._conn = gate._upstream()
                    try:
                        self._conn.request(self.command, self.path, body=body, headers=headers)
                        return self._conn.getresponse()
                    except (OSError, http.client.HTTPException):
                        self._conn.close()
                        self._conn = None
                        if attempt == UPSTREAM_ATTEMPTS:
                            raise
                raise AssertionError("unreachable")

            def _refuse(self, code: str) -> None:
                request_id = str(uuid.uuid4())
                message = {
                    "AuthorizationPermissionMismatch": "This request is not authorized to perform "
                    "this operation using this permission.",
                    "AuthenticationFailed": "Server failed to authenticate the request. Make sure "
                    "the value of Authorization header is formed correctly including the "
                    "signature.",
                }[code]
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())
                payload = (
                    '<?xml version="1.0" encoding="utf-8"?>'
                    f"<Error><Code>{code}</Code><Message>{message}\n"
                    f"RequestId:{request_id}\nTime:{stamp}</Message></Error>"
                ).encode()
                self.send_body(
                    403,
                    payload,
                    "application/xml",
                    headers={"x-ms-error-code": code, "x-ms-request-id": request_id},
                )

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _proxy

            def finish(self) -> None:
                if self._conn is not None:
                    self._conn.close()
                super().finish()

        return Handler

    # ---- lifecycle -----------------------------------------------------------------------------

    def _make_server(self) -> LoopbackHttpsServer:
        return LoopbackHttpsServer(self.port, self._handler(), self.tls)
