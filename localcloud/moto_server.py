"""moto's server (STS, S3, IAM, ...) on 127.0.0.1, with counting and latency measured at the fake.

A WSGI middleware sits in front of moto's own app, inside the server thread that answers, so every
count is what the server actually received (not what a client believes it sent), and the
injected latency is paid by every client the way a network round trip would be.

Known emulator limits (docs/design.md "Emulators"): moto's `AssumeRoleWithWebIdentity` accepts any
token
and ignores the role's trust policy. `sts_guard` is the hook for something that checks what AWS
checks (a test's trust check, or the local cloud's STS front): it sees the request parameters and
may refuse with an AWS-shaped error before moto answers. moto's backends and its auth switch
(`enable_auth`) are process-wide, so run one `MotoServer` per process. Given `TlsFiles` it speaks
HTTPS with the local CA's server certificate (web identity tokens then travel as to AWS).
"""

from __future__ import annotations

import io
import ssl
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from localcloud.certs import TlsFiles
from localcloud.https import LoopbackService, server_context
from localcloud.net import LOOPBACK, free_port

WEB_IDENTITY = "AssumeRoleWithWebIdentity"
# Parameters never recorded: the web identity token is a bearer credential.
_SECRET_PARAMS = frozenset({"WebIdentityToken", "SAMLAssertion"})
DUMMY_KEY = "testing"  # moto's admin client only; moto accepts any key when auth is off


@dataclass(frozen=True)
class StsRefusal:
    """An error AWS STS would answer instead of credentials."""

    code: str
    """e.g. `InvalidIdentityToken` (400) or `AccessDenied` (403)."""
    message: str
    status: int = 400


StsGuard = Callable[[Mapping[str, str]], StsRefusal | None]
"""Called with the form parameters of each AssumeRoleWithWebIdentity; None lets moto answer.
Also how a test makes STS fail like an outage: `StsRefusal("ServiceUnavailable", "...", 503)`,
`StsRefusal("Throttling", "Rate exceeded")`, `StsRefusal("IDPCommunicationError", "...")`."""


@dataclass(frozen=True)
class S3Refusal:
    """An error S3 would answer instead of doing the request (REST-XML error document)."""

    code: str
    """e.g. `ExpiredToken` (400), `AccessDenied` (403), `SlowDown` (503)."""
    message: str
    status: int = 403


S3Guard = Callable[[str, str], S3Refusal | None]
"""Called with (access key id, action) of each signed S3 request; None lets moto answer."""


@dataclass(frozen=True)
class AwsCall:
    """One request the fake received (parameters without secrets)."""

    service: str
    action: str
    params: Mapping[str, str]
    status: int | None = None
    """Set when the middleware answered itself (a refusal); None when moto answered."""
    at: float = 0.0
    """`time.monotonic()` when the request arrived, before any injected latency."""


class _QuietHandler(MotoRequestHandler):
    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        # werkzeug would print every request line to stderr; counts are kept by the middleware.
        pass


class _Middleware:
    """WSGI middleware: classify, count, delay and optionally refuse before moto sees a request."""

    def __init__(self, app: Any, owner: MotoServer) -> None:
        self._app = app
        self._owner = owner

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self._app(environ, start_response)
        arrived = time.monotonic()
        service, action, params = self._classify(environ)
        owner = self._owner
        if service == "sts" and action == WEB_IDENTITY:
            if owner.sts_latency:
                owner._stopping.wait(owner.sts_latency)
            guard = owner.sts_guard
            refusal = guard(params) if guard else None
            if refusal is not None:
                owner._record(service, action, params, refusal.status, arrived)
                return _sts_error(refusal, start_response)
        elif service == "s3":
            if owner.s3_latency:
                owner._stopping.wait(owner.s3_latency)
            refusal = owner._refuse_s3(_access_key_id(environ), action)
            if refusal is not None:
                owner._record(service, action, params, refusal.status, arrived)
                return _s3_error(refusal, start_response)
        owner._record(service, action, params, None, arrived)
        return self._app(environ, start_response)

    @staticmethod
    def _classify(environ: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
        """(service, action, params) from the SigV4 credential scope or a query-protocol body."""
        params: dict[str, str] = {}
        content_type = environ.get("CONTENT_TYPE", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)  # moto reads the body again
            params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        action = params.get("Action", "")
        if action in (WEB_IDENTITY, "AssumeRoleWithSAML"):
            # Unsigned by design: there is no credential scope to read the service from.
            return "sts", action, params
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        service = "unknown"
        if "Credential=" in authorization:
            scope = authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")
            if len(scope) >= 4:
                service = scope[3]
        if not action:
            action = f"{environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')}"
        return service, action, params


def _access_key_id(environ: Mapping[str, Any]) -> str:
    """The access key id of a SigV4 `Authorization` header (empty when unsigned)."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" not in authorization:
        return ""
    return authorization.split("Credential=", 1)[1].split("/", 1)[0]


_REASONS = {400: "Bad Request", 403: "Forbidden", 429: "Too Many Requests", 500: "Internal Error"}
_REASONS[503] = "Service Unavailable"


def _s3_error(refusal: S3Refusal, start_response: Callable) -> list[bytes]:
    """The REST-XML error document S3 sends; botocore turns it into a ClientError."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{escape(refusal.code)}</Code><Message>{escape(refusal.message)}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    ).encode()
    start_response(
        f"{refusal.status} {_REASONS.get(refusal.status, 'Error')}",
        [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _sts_error(refusal: StsRefusal, start_response: Callable) -> list[bytes]:
    """The query-protocol error document STS sends; botocore turns it into a ClientError."""
    kind = "Receiver" if refusal.status >= 500 else "Sender"
    body = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<Error><Type>{kind}</Type><Code>{escape(refusal.code)}</Code>"
        f"<Message>{escape(refusal.message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()
    start_response(
        f"{refusal.status} {_REASONS.get(refusal.status, 'Error')}",
        [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))],
    )
    return [body]


class MotoServer(LoopbackService):
    """Context manager: `with MotoServer(s3_latency=0.06) as aws: aws.endpoint_url`."""

    _thread_name = "moto"

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        sts_latency: float = 0.0,
        s3_latency: float = 0.0,
        sts_guard: StsGuard | None = None,
        s3_guard: S3Guard | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        self.region = region
        self.sts_latency = sts_latency
        """Seconds added to each AssumeRoleWithWebIdentity request."""
        self.s3_latency = s3_latency
        """Seconds added to each S3 request."""
        self.sts_guard = sts_guard
        self.s3_guard = s3_guard
        self.tls = tls
        """HTTPS with this server certificate when set; admin clients then trust its CA."""
        self.port = free_port()
        scheme = "https" if tls else "http"
        self.endpoint_url = f"{scheme}://{LOOPBACK}:{self.port}"
        self._keys = (DUMMY_KEY, DUMMY_KEY)
        self._lock = threading.Lock()
        self._calls: list[AwsCall] = []
        self._counts: Counter[tuple[str, str]] = Counter()
        self._revoked: set[str] = set()
        self._counted_since = 0.0
        # Set on stop: ends injected waits, so a "hung" request does not outlive the server.
        self._stopping = threading.Event()

    # ---- faults --------------------------------------------------------------------------------

    def revoke_sessions(self) -> None:
        """What IAM's "Revoke active sessions" does to every session issued so far: an inline
        policy AWSRevokeOlderSessions denies all actions when aws:TokenIssueTime is older than
        now, so S3 answers those sessions AccessDenied (an explicit deny); new sessions work.
        https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_revoke-sessions.html
        """
        from moto.sts.models import sts_backends

        keys = {
            role.access_key_id
            for account_id in list(sts_backends.keys())
            for backend in sts_backends[account_id].values()
            for role in backend.assumed_roles
        }
        with self._lock:
            self._revoked |= keys

    def restore_sessions(self) -> None:
        with self._lock:
            self._revoked.clear()

    def _refuse_s3(self, access_key_id: str, action: str) -> S3Refusal | None:
        with self._lock:
            revoked = access_key_id in self._revoked
        if revoked:
            return S3Refusal(
                "AccessDenied",
                f"User: {access_key_id} is not authorized to perform this action with an explicit "
                "deny in an identity-based policy",
            )
        guard = self.s3_guard
        return guard(access_key_id, action) if guard else None

    # ---- counting ------------------------------------------------------------------------------

    def _record(
        self,
        service: str,
        action: str,
        params: Mapping[str, str],
        status: int | None,
        at: float,
    ) -> None:
        safe = {k: v for k, v in params.items() if k not in _SECRET_PARAMS}
        with self._lock:
            if at < self._counted_since:
                return  # arrived before reset_counts (e.g. held by injected latency): not counted
            self._calls.append(AwsCall(service, action, safe, status, at))
            self._counts[(service, action)] += 1

    def calls(self, service: str, action: str | None = None) -> int:
        """Requests received for a service (and action); S3 actions are "METHOD /path"."""
        with self._lock:
            return sum(
                n
                for (svc, act), n in self._counts.items()
                if svc == service and (action is None or act == action)
            )

    @property
    def web_identity_calls(self) -> int:
        """AssumeRoleWithWebIdentity requests received (refused ones included)."""
        return self.calls("sts", WEB_IDENTITY)

    def call_log(self, service: str | None = None) -> list[AwsCall]:
        with self._lock:
            return [c for c in self._calls if service is None or c.service == service]

    def reset_counts(self) -> None:
        with self._lock:
            self._calls.clear()
            self._counts.clear()
            self._counted_since = time.monotonic()

    def issued_secrets(self) -> list[str]:
        """Secret keys and session tokens moto has handed out (for leak checks only).

        Read from moto's in-process STS backends, i.e. what the fake really issued.
        """
        from moto.sts.models import sts_backends

        found: list[str] = []
        for account_id in list(sts_backends.keys()):
            for backend in sts_backends[account_id].values():
                for role in backend.assumed_roles:
                    found += [role.secret_access_key, role.session_token]
        return found

    # ---- administration ------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Standard variables that point the AWS SDKs at this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url}

    def use_keys(self, access_key_id: str, secret: str) -> None:
        """Sign admin calls with these keys (an IAM user's: needed once auth is on)."""
        self._keys = (access_key_id, secret)

    def client(self, service: str) -> Any:
        """An admin boto3 client (dummy keys unless `use_keys`) for seeding; not for the code
        under test."""
        import boto3

        return boto3.session.Session().client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self._keys[0],
            aws_secret_access_key=self._keys[1],
            verify=str(self.tls.ca_cert) if self.tls else None,
        )

    def _post(self, path: str, data: bytes) -> None:
        # Not form-encoded (urllib's default): Flask would parse it and moto would see no data.
        request = urllib.request.Request(  # noqa: S310 - a fixed loopback http(s) URL
            f"{self.endpoint_url}{path}",  # always http(s)://127.0.0.1:port
            data=data,
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        context = ssl.create_default_context(cafile=str(self.tls.ca_cert)) if self.tls else None
        with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310
            response.read()

    def enable_auth(self) -> None:
        """From now on moto checks signatures and IAM policies (S3 enforces the role's policy).

        Unsigned calls then fail, AssumeRoleWithWebIdentity included: assume before enabling.
        """
        self._post("/moto-api/reset-auth", b"0")

    def disable_auth(self) -> None:
        self._post("/moto-api/reset-auth", b"inf")

    def reset(self) -> None:
        """Forget every resource in every moto backend."""
        self._post("/moto-api/reset", b"")

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> MotoServer:
        self._stopping.clear()
        return super().start()

    def stop(self) -> None:
        self._stopping.set()
        super().stop()

    def _make_server(self) -> BaseWSGIServer:
        # moto's own app behind the middleware, and a handler that does not print each request.
        app = _Middleware(DomainDispatcherApplication(create_backend_app), self)
        return make_server(
            LOOPBACK,
            self.port,
            app,
            threaded=True,
            request_handler=_QuietHandler,
            ssl_context=server_context(self.tls) if self.tls else None,
        )
