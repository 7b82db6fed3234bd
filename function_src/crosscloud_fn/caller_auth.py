"""The front door: every route answers only a caller holding an Entra access token for the
reader API with its app role (docs/callers.md, issue 16).

The host runs the routes at `AuthLevel.ANONYMOUS`: a function key is a shared secret that says
nothing about who calls. Here the token is checked with PyJWT against the tenant's published
signing keys (`{authority}/{tenant}/discovery/v2.0/keys`): RS256 only, a published `kid`, `iss`
exactly the v1 or v2 issuer of the tenant, `tid`, `aud` (identifier URI or client id),
`exp`/`nbf` with at most 5 minutes of leeway, and `roles` holding the reader role.

Signing keys are cached in the process (crosscloud_fn/caller_keys.py): a token with an unknown
`kid` refreshes the set at most once per `CROSSCLOUD_CALLER_KEYS_REFRESH_SECONDS`, and while the
keys endpoint is down the cached keys keep serving. Nothing cached and the endpoint down is a
503, never a 200 nor a 401.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
from jwt import PyJWK

from crosscloud_fn import errors
from crosscloud_fn.caller_keys import (
    DEFAULT_REFRESH_SECONDS,
    CallerKeys,
    KeysUnavailable,
)
from crosscloud_fn.settings import (
    CALLER_AUDIENCE,
    CALLER_CLIENT_ID,
    CALLER_KEYS_REFRESH,
    CALLER_ROLE,
    TENANT_ID,
    Limits,
    SettingsError,
)

log = logging.getLogger("crosscloud")

AUTHORITY_HOST = "AZURE_AUTHORITY_HOST"
"""Read as azure-identity reads it (EnvironmentVariables.AZURE_AUTHORITY_HOST)."""
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_ROLE = "CrossCloud.Read"
MAX_LEEWAY = 300
"""Clock skew allowed on `exp`/`nbf` (seconds); the issue's upper bound."""
MAX_REMEMBERED = 1024
"""Admitted tokens remembered per process (by hash) so a repeated token skips the signature."""
MAX_TOKEN_CHARS = 16 * 1024
"""Entra access tokens are a few KB; anything longer is refused before parsing."""
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_ROLE = re.compile(r"^[A-Za-z0-9_.:-]{1,120}$")


@dataclass(frozen=True)
class CallerSettings:
    """What the front door checks, from the app settings the Pulumi program sets."""

    tenant_id: str
    audience: str
    """The reader API's identifier URI (`aud` of a v1 token)."""
    client_id: str
    """The reader API's client id (`aud` of a v2 token)."""
    role: str = DEFAULT_ROLE
    authority: str = DEFAULT_AUTHORITY
    refresh_seconds: float = DEFAULT_REFRESH_SECONDS
    fetch_timeout: float = 5.0
    """Total time one key-set fetch may take; within the request's budget."""

    @property
    def keys_url(self) -> str:
        return f"{self.authority}/{self.tenant_id}/discovery/v2.0/keys"

    @property
    def issuers(self) -> tuple[str, str]:
        """`iss` of v1 and v2 access tokens of the tenant; nothing else is accepted."""
        return (
            f"https://sts.windows.net/{self.tenant_id}/",
            f"{self.authority}/{self.tenant_id}/v2.0",
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CallerSettings:
        env = os.environ if environ is None else environ

        def guid(name: str) -> str:
            value = (env.get(name) or "").strip()
            if not value:
                raise SettingsError(name, "is not set")
            try:
                return str(uuid.UUID(value))
            except ValueError:
                raise SettingsError(name, f"{value!r} is not a GUID") from None

        tenant_id = guid(TENANT_ID)
        client_id = guid(CALLER_CLIENT_ID)
        audience = (env.get(CALLER_AUDIENCE) or "").strip()
        if not re.fullmatch(r"[a-z][a-z0-9+.-]*://\S+", audience, re.IGNORECASE):
            raise SettingsError(CALLER_AUDIENCE, f"{audience!r} is not an identifier URI")
        role = (env.get(CALLER_ROLE) or "").strip() or DEFAULT_ROLE
        if not _ROLE.fullmatch(role):
            raise SettingsError(CALLER_ROLE, f"{role!r} is not an app role value")
        refresh_raw = (env.get(CALLER_KEYS_REFRESH) or "").strip()
        try:
            refresh = float(refresh_raw) if refresh_raw else DEFAULT_REFRESH_SECONDS
        except ValueError:
            raise SettingsError(CALLER_KEYS_REFRESH, f"{refresh_raw!r} is not seconds") from None
        if not 0 < refresh <= 86400:
            raise SettingsError(CALLER_KEYS_REFRESH, "must be more than 0 and at most 86400")
        limits = Limits.from_env(env)
        return cls(
            tenant_id=tenant_id,
            audience=audience,
            client_id=client_id,
            role=role,
            authority=authority_host(env.get(AUTHORITY_HOST)),
            refresh_seconds=refresh,
            # Checked before any cloud is called, once per process while warm: the request's
            # budget (at most 50 s) plus this stays under functionTimeout (60 s).
            fetch_timeout=min(limits.call_timeout, 5.0),
        )


_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def authority_host(value: str | None) -> str:
    """AZURE_AUTHORITY_HOST as azure-identity normalises it (`normalize_authority`: https only,
    no trailing slash). One exception: http to a loopback host, where only a local fake Entra can
    listen (the function tests' plain-HTTP fake); nothing on the network is ever read over http."""
    value = (value or "").strip().rstrip("/")
    if not value:
        return DEFAULT_AUTHORITY
    if "://" not in value:
        return f"https://{value}"
    url = urlsplit(value)
    if url.scheme != "https" and not (url.scheme == "http" and url.hostname in _LOOPBACK_HOSTS):
        raise SettingsError(AUTHORITY_HOST, f"{value!r} must be an https:// URL")
    return value


@dataclass(frozen=True)
class Caller:
    """Who called: non-secret claims of a token that passed every check."""

    oid: str | None
    appid: str | None
    """`appid` (v1) or `azp` (v2): the client application the token was issued to."""
    kind: str
    """"app" for an application or managed identity, "user" for a person (delegated token)."""
    roles: tuple[str, ...]

    def public(self) -> dict[str, Any]:
        return {"oid": self.oid, "appid": self.appid, "kind": self.kind, "roles": list(self.roles)}


class Refused(Exception):
    """The request is not let in: `error` is the JSON answer; `caller` who it was, if known."""

    def __init__(self, error: errors.CrossCloudError, outcome: str, caller: Caller | None = None):
        super().__init__(error.code)
        self.error = error
        self.outcome = outcome
        self.caller = caller


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


class CallerGuard:
    """Checks the `Authorization` header of one request; built once per process.

    A token that passed every check is remembered (by its SHA-256, never the token itself) until
    its `exp` plus the allowed skew, so a caller sending the same token again costs a hash and a
    lookup instead of a signature check. What a token says cannot change; only time can make it
    invalid, and that is checked on every use. At most `MAX_REMEMBERED` tokens, least recently
    used dropped first.
    """

    def __init__(
        self,
        settings: CallerSettings,
        keys: CallerKeys | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.keys = keys or CallerKeys(
            settings.keys_url,
            refresh_seconds=settings.refresh_seconds,
            fetch_timeout=settings.fetch_timeout,
        )
        self._clock = clock
        self._admitted: OrderedDict[bytes, tuple[Caller, float, float]] = OrderedDict()
        self._admitted_lock = threading.Lock()

    def check(self, authorization: str | None) -> Caller:
        """The caller, or `Refused` with the 401/403/503 answer."""
        token = self._bearer(authorization)
        digest = hashlib.sha256(token.encode()).digest()
        with self._admitted_lock:
            remembered = self._admitted.get(digest)
            if remembered is not None:
                self._admitted.move_to_end(digest)
        if remembered is not None:
            caller, not_before, expires = remembered
            now = self._clock()
            if now > expires + MAX_LEEWAY:
                self._forget(digest)
                raise self._invalid("exp", "the token has expired")
            if now < not_before - MAX_LEEWAY:  # only a clock set back gets here
                raise self._invalid("nbf", "the token is not valid yet (nbf)")
            return caller
        caller, claims = self.verify(token)
        with self._admitted_lock:
            self._admitted[digest] = (caller, float(claims["nbf"]), float(claims["exp"]))
            while len(self._admitted) > MAX_REMEMBERED:
                self._admitted.popitem(last=False)
        return caller

    def verify(self, token: str) -> tuple[Caller, dict[str, Any]]:
        """Every check on `token` (no memory): the caller and the token's claims, or `Refused`."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise self._invalid("malformed", "the token is not a JWT") from None
        if header.get("alg") != "RS256":
            raise self._invalid("alg", "the token's alg must be RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise self._invalid("kid", "the token's header has no kid")
        try:
            key = self.keys.key(kid)
        except KeysUnavailable as exc:
            raise Refused(
                errors.caller_keys_unavailable(str(exc), self.keys.retry_after), "keys_unavailable"
            ) from None
        if key is None:
            raise self._invalid("kid", "the token's kid is not among the tenant's signing keys")
        claims = self._decode(token, key)
        caller = Caller(
            oid=_str(claims.get("oid")),
            appid=_str(claims.get("appid")) or _str(claims.get("azp")),
            kind="user" if "scp" in claims or claims.get("idtyp") == "user" else "app",
            roles=tuple(r for r in claims.get("roles") or () if isinstance(r, str))[:20],
        )
        if self.settings.role not in caller.roles:
            raise Refused(errors.forbidden(self.settings.role, caller.oid), "forbidden", caller)
        return caller, claims

    def _forget(self, digest: bytes) -> None:
        with self._admitted_lock:
            self._admitted.pop(digest, None)

    def _bearer(self, authorization: str | None) -> str:
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Refused(errors.unauthenticated(None), "no_token")
        if len(token) > MAX_TOKEN_CHARS or not _TOKEN.fullmatch(token):
            raise Refused(errors.unauthenticated(None), "malformed")
        return token

    def _decode(self, token: str, key: PyJWK) -> dict[str, Any]:
        s = self.settings
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=[s.audience, s.client_id],
                issuer=list(s.issuers),
                leeway=MAX_LEEWAY,
                options={"require": ["exp", "nbf", "iss", "aud", "tid"], "strict_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise self._invalid("exp", "the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise self._invalid("nbf", "the token is not valid yet (nbf)") from None
        except jwt.InvalidAudienceError:
            raise self._invalid(
                "aud", f"the token's aud is not this API ({s.audience} or {s.client_id})"
            ) from None
        except jwt.InvalidIssuerError:
            raise self._invalid("iss", "the token's iss is not this tenant's issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise self._invalid("claims", f"the token has no {exc.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise self._invalid("signature", "the token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise self._invalid(
                "malformed", f"the token is malformed ({type(exc).__name__})"
            ) from None
        if claims.get("tid") != s.tenant_id:
            raise self._invalid("tid", f"the token is from tenant {_short(claims.get('tid'))}")
        return claims

    def _invalid(self, check: str, message: str) -> Refused:
        return Refused(errors.unauthenticated(message), f"invalid_token:{check}")


def _str(value: Any) -> str | None:
    return _short(value) if isinstance(value, str) and value else None


_lock = threading.Lock()
_current: CallerGuard | None = None


def current() -> CallerGuard:
    """The process's guard, built from the app settings on first use (SettingsError if not)."""
    global _current
    guard = _current
    if guard is None:
        with _lock:
            if _current is None:
                _current = CallerGuard(CallerSettings.from_env())
            guard = _current
    return guard


def replace(guard: CallerGuard | None) -> None:
    """Swap the process's guard (tests and benches); None: rebuilt from the settings."""
    global _current
    with _lock:
        _current = guard
