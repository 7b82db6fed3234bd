"""One structured record per request, written so Application Insights can query its fields.

Why a JSON message rather than `logging` extras: the Python worker forwards a record to the
Functions host as its formatted message text only; the host writes it to the `traces` table with
its own customDimensions (Category, InvocationId, LogLevel, ...) and drops `extra=` attributes
(Azure/azure-functions-python-worker#1327, #694). A JSON message survives that path intact and
KQL turns it into columns with `parse_json(message)` (docs/operations.md has the queries).

The record holds only what is listed in `FIELDS`: route, status, error code, duration, the
principal (object) id of the app's identity (an id, not a credential), per-cloud time, cold or
warm, whether the AWS credentials were (re)fetched from STS during the request, and the caller:
its object id, client application id (`appid`/`azp`) and the front door's outcome (`ok`,
`no_token`, `malformed`, `invalid_token:<check>`, `forbidden`, `keys_unavailable`). It never
holds a token, a key, a header or an object name chosen by the caller.
"""

from __future__ import annotations

import base64
import contextvars
import json
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

EVENT = "crosscloud.request"
FIELDS = (
    "event",
    "route",
    "status",
    "code",
    "duration_ms",
    "principal_id",
    "azure_ms",
    "aws_ms",
    "cold",
    "aws_credentials_refreshed",
    "caller_oid",
    "caller_appid",
    "auth",
)
log = logging.getLogger("crosscloud.request")
T = TypeVar("T")

_current: contextvars.ContextVar[Request | None] = contextvars.ContextVar(
    "crosscloud_request", default=None
)


# The per-process runtimes that served a request: a new one (a new worker process, or a
# replaced runtime) is what makes a request cold.
_seen: weakref.WeakSet[Any] = weakref.WeakSet()


class ObservedIdentity:
    """The app's credential, unchanged, remembering the `oid` of the tokens it hands out.

    The principal id comes from tokens the request needed anyway: asking the credential for one
    just for telemetry could cost an Entra round trip (MSAL treats a token within 5 minutes of
    expiry as expired).
    """

    def __init__(self, credential: Any) -> None:
        self._credential = credential
        self.principal_id: str | None = None

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        token = self._credential.get_token(*scopes, **kwargs)
        self._note(token.token)
        return token

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        info = self._credential.get_token_info(*scopes, options=options)
        self._note(info.token)
        return info

    def __getattr__(self, name: str) -> Any:
        return getattr(self._credential, name)

    def _note(self, token: str) -> None:
        if self.principal_id is not None:
            return
        try:
            payload = token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (IndexError, ValueError):
            return
        oid = claims.get("oid") if isinstance(claims, dict) else None
        if isinstance(oid, str) and len(oid) <= 64:
            self.principal_id = oid


@dataclass
class Request:
    """Measurements of one request, filled in while it runs."""

    route: str
    started: float = field(default_factory=time.perf_counter)
    cloud_ms: dict[str, float] = field(default_factory=dict)
    cold: bool | None = None
    caller: Any = None
    """The `caller_auth.Caller` the front door admitted (or refused, when known)."""
    auth: str | None = None
    """The front door's outcome."""
    _expiry_before: Any = None
    _token: contextvars.Token | None = None

    def note_caller(self, caller: Any, outcome: str) -> None:
        """Record who called (ids only, never the token) and what the front door decided."""
        self.caller = caller
        self.auth = outcome

    def attach(self, runtime: Any) -> None:
        """Note the runtime serving the request (before it does any work)."""
        self.cold = runtime not in _seen
        _seen.add(runtime)
        self._expiry_before = _aws_expiry(runtime)


def begin(route: str) -> Request:
    """Start measuring a request; `timed()` calls in this thread add to it until `finish()`."""
    request = Request(route)
    request._token = _current.set(request)
    return request


def timed(cloud: str, work: Callable[[], T]) -> Callable[[], T]:
    """`work`, measured as time spent in `cloud` by the current request (if any).

    Wrap in the request's thread, run anywhere (e.g. on a pool): the request is captured here.
    """
    request = _current.get()
    if request is None:
        return work

    def run() -> T:
        started = time.perf_counter()
        try:
            return work()
        finally:
            request.cloud_ms[cloud] = round((time.perf_counter() - started) * 1e3, 1)

    return run


def record(request: Request, status: int, code: str, runtime: Any = None) -> dict[str, Any]:
    """The request's fields (see `FIELDS`)."""
    expiry_after = _aws_expiry(runtime) if runtime is not None else None
    return {
        "event": EVENT,
        "route": request.route,
        "status": status,
        "code": code,
        "duration_ms": round((time.perf_counter() - request.started) * 1e3, 1),
        "principal_id": getattr(getattr(runtime, "credential", None), "principal_id", None),
        "azure_ms": request.cloud_ms.get("azure"),
        "aws_ms": request.cloud_ms.get("aws"),
        "cold": request.cold,
        "aws_credentials_refreshed": (
            None if runtime is None else expiry_after != request._expiry_before
        ),
        "caller_oid": getattr(request.caller, "oid", None),
        "caller_appid": getattr(request.caller, "appid", None),
        "auth": request.auth,
    }


def finish(request: Request, status: int, code: str, runtime: Any = None) -> dict[str, Any]:
    """Log the request's one record (INFO, logger `crosscloud.request`) and return its fields."""
    if request._token is not None:
        _current.reset(request._token)
        request._token = None
    fields = record(request, status, code, runtime)
    log.info("%s", json.dumps(fields, separators=(",", ":")))
    return fields


def _aws_expiry(runtime: Any) -> Any:
    """Expiry of the AWS session the runtime holds; it changes exactly when botocore fetched new
    credentials from STS. `_expiry_time` is botocore's (pinned) RefreshableCredentials state."""
    credentials = getattr(runtime, "aws_credentials", None)
    return getattr(credentials, "_expiry_time", None)
