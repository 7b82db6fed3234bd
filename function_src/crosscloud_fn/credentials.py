"""AWS credentials that come from the managed identity (`identity`) and refresh themselves.

botocore's `AssumeRoleWithWebIdentityCredentialFetcher`, fed with the identity's token for
the federation audience, wrapped in `DeferredRefreshableCredentials`. botocore then calls STS
lazily on first use and again only when the credentials come within 15 minutes of expiry (so
`DurationSeconds` must be well above 900, or every call would refresh). The STS call is
unsigned: the Entra token is the only proof. No AWS key exists anywhere, and the botocore
sessions here are given no other credential source, so an AWS key that somehow appeared in the
environment could never be picked up instead.

Every call is bounded (`Settings.limits`): explicit connect/read timeouts, at most two
attempts per call for the identity endpoint, STS and S3 (the SDK defaults wait up to 300 s per
read at the identity endpoint, with retries), and a total deadline per call (`waiting_on`, which
cuts a dripping connection off). Outages of the identity endpoint and STS raise
`dependencies.Unavailable` and start a cooldown (as long as the service's `Retry-After` asks, up
to a cap); refusals pass through unchanged. Concurrent requests share one token request and one
STS exchange in flight, plus one hedge if that takes long (`SingleFlight`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import botocore.session
from botocore import UNSIGNED
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleWithWebIdentityCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import ClientError, HTTPClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError

from crosscloud_fn import aws_services
from crosscloud_fn.dependencies import STS, Cooldown, SingleFlight, Unavailable, cut_off, waiting_on
from crosscloud_fn.identity import IdentityCredential
from crosscloud_fn.settings import Limits, Settings

# >= 3600: botocore refreshes 15 minutes before expiry, so 900 s would refresh on every call.
SESSION_DURATION_SECONDS = 3600
CREDENTIAL_METHOD = "crosscloud-web-identity"
Clock = Callable[[], dt.datetime]
T = TypeVar("T")
# Credentials fetched by `WebIdentityCredentials._exchange`, for botocore's refresh step.
_handoff = threading.local()
log = logging.getLogger("crosscloud")

# STS answers that mean "down or busy, ask again later", not "no": throttling, its own failures,
# and IDPCommunicationError (STS could not reach the issuer's keys; botocore's _retry.json
# retries it). https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html
STS_OUTAGE_CODES = frozenset(
    {
        "IDPCommunicationError",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "RequestTimeout",
    }
)
# S3 errors that mean the session credentials were rejected, not the request: fetch new ones
# once and retry once. AccessDenied is in the list because revoking a role's sessions (IAM
# "Revoke active sessions") attaches a Deny on aws:TokenIssueTime, and S3 then answers
# AccessDenied to the old session: https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_revoke-sessions.html
# It is refreshed for at most once per set of credentials (see `retry_rejected`).
REJECTED_SESSION_CODES = frozenset(
    {
        "ExpiredToken",
        "InvalidToken",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "RequestTimeTooSkewed",
    }
)
DENIED_CODES = frozenset({"AccessDenied", "403"})
REJECTION_COOLDOWN = 30.0
"""After fresh credentials were rejected too (clock skew, a persistent ExpiredToken...), how long
(seconds) further rejections of the same credentials are answered without another STS exchange:
a refresh cannot fix them, so they cool down like an outage instead of costing one each."""


def aws_client_config(settings: Settings, **overrides: Any) -> Config:
    """Explicit region (regional STS endpoint), bounded retries and timeouts for every client.

    Two attempts in all (standard mode: exponential backoff with jitter, and a retry quota shared
    by the client that stops retrying during a long outage). `total_max_attempts`, because
    `max_attempts` in a Config counts retries: botocore adds one for the first attempt
    (botocore/args.py), so the former `max_attempts: 3` sent STS four requests per exchange.
    """
    limits = settings.limits
    options: dict[str, Any] = {
        "region_name": settings.aws_region,
        "retries": {"mode": "standard", "total_max_attempts": 2},
        "connect_timeout": limits.connect_timeout,
        "read_timeout": limits.call_timeout,
        "max_pool_connections": 32,
        "user_agent_extra": "crosscloud-fn",
    }
    options.update(overrides)
    return Config(**options)


def isolated_botocore_session(*providers: CredentialProvider) -> botocore.session.Session:
    """A botocore session whose only credential sources are `providers` (none: unsigned only).

    Endpoint and CA settings (AWS_ENDPOINT_URL, AWS_CA_BUNDLE) still come from the environment,
    as with any botocore session.
    """
    session = botocore.session.Session()
    session.register_component("credential_provider", CredentialResolver(list(providers)))
    return session


class _NeverCache(dict):
    """A fetcher cache that holds nothing: `RefreshableCredentials` alone decides when to
    refresh (with one clock), instead of a second expiry check on the fetcher's own clock."""

    def __contains__(self, key: object) -> bool:
        return False

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


class _StaticProvider(CredentialProvider):
    METHOD = CREDENTIAL_METHOD
    CANONICAL_NAME = "custom-crosscloud-web-identity"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        self._credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self._credentials


def _sts_outage(exc: Exception, limits: Limits) -> Unavailable | None:
    """The outage behind a failed AssumeRoleWithWebIdentity, or None for a refusal."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if code not in STS_OUTAGE_CODES and status < 500 and status != 429:
            return None
        reason = f"{code or 'HTTP'} ({status})"
    elif isinstance(exc, ReadTimeoutError):
        reason = f"no answer within {limits.call_timeout:g} s"
    elif isinstance(exc, BotoConnectionError | HTTPClientError):
        reason = "could not connect"
    elif isinstance(exc, ResponseParserError):
        reason = "the answer was not an STS response"  # e.g. an HTML 5xx page
    else:
        return None
    return Unavailable(STS, reason, f"{type(exc).__name__}: {exc}", limits.outage_cooldown)


class WebIdentityCredentials(DeferredRefreshableCredentials):
    """botocore's deferred refreshable credentials, refreshed by `fresh()` outside botocore's
    refresh lock, one exchange in flight at a time, plus one forced refresh when S3 rejects them.

    botocore refreshes inside `_refresh_lock` and makes every other thread in the mandatory
    window wait on that lock without a timeout: one exchange stuck at a hung identity endpoint or
    STS would stall every later request until it gives up. Here the exchange runs as a
    `SingleFlight`: concurrent requests share it and wait for it only until their own deadline
    (the exchange itself is cut off at its deadline), and botocore's lock is held just to install
    the result (`_protected_refresh` with the fetched data handed over). botocore is pinned,
    like the fetcher this builds on.
    """

    def __init__(
        self,
        fetch: Callable[[], dict[str, Any]],
        wait: float,
        clock: Clock | None,
        hedge: float = 1.0,
    ) -> None:
        if clock is None:
            super().__init__(self._fetched_or_fetch, CREDENTIAL_METHOD)
        else:
            super().__init__(self._fetched_or_fetch, CREDENTIAL_METHOD, time_fetcher=clock)
        self._fetch = fetch
        self._wait = wait
        self.flight = SingleFlight(STS, hedge)
        self._state_lock = threading.Lock()
        # (access key, monotonic time until which its rejection is not refreshed again)
        self._checked: tuple[str | None, float] = (None, 0.0)
        self.takes_over_refresh = _has_refresh_internals(self)
        """False if this botocore lacks the private refresh state used here: botocore then
        refreshes by itself (under its own lock) and rejected sessions are not refreshed early,
        instead of every AWS call failing on an AttributeError."""
        if not self.takes_over_refresh:
            log.warning(
                "botocore %s lacks the refresh internals crosscloud_fn uses (pinned: see "
                "requirements.txt); falling back to botocore's own credential refresh",
                botocore.__version__,
            )

    def _fetched_or_fetch(self) -> dict[str, Any]:
        # botocore's refresh step: use what `_exchange` fetched in this thread, if anything.
        fetched = getattr(_handoff, "fetched", None)
        return fetched if fetched is not None else self._fetch()

    @contextmanager
    def fresh(self) -> Iterator[None]:
        """Credentials valid for the block's S3 calls, exchanged first if a refresh is due."""
        try:
            if self.takes_over_refresh and self.refresh_needed():
                self._exchange(rejected=None)
            yield
        finally:
            _handoff.fetched = None

    def current_access_key(self) -> str | None:
        """The access key now in use, without triggering a refresh (None before the first)."""
        return getattr(self, "_access_key", None)

    def refresh_now(self, rejected_access_key: str, hold: float = 0.0) -> None:
        """New credentials from STS, unless another thread already replaced the rejected ones.
        Should the new ones be rejected as well, that is answered without another exchange for
        `hold` seconds (see `retry_rejected`)."""
        if not self.takes_over_refresh:
            return  # no public way to force botocore's refresh: the retry shows the outcome
        self._exchange(rejected=rejected_access_key or None, forced=True, hold=hold)

    def _exchange(self, rejected: str | None, forced: bool = False, hold: float = 0.0) -> None:
        # Whoever comes first exchanges; the others wait for that exchange and use its outcome.
        self.flight.run("exchange", lambda: self._exchange_now(rejected, forced, hold), self._wait)

    def _exchange_now(self, rejected: str | None, forced: bool, hold: float) -> None:
        if forced:
            if rejected is not None and self._access_key != rejected:
                return  # another thread has replaced them already
        elif not self.refresh_needed():
            return
        mandatory = forced or self.refresh_needed(self._mandatory_refresh_timeout)
        try:
            fetched = self._fetch()
        except Exception:
            if mandatory:
                raise
            # Advisory window (10-15 min before expiry): the current ones still work.
            log.warning("early refresh of the AWS credentials failed", exc_info=True)
            return
        _handoff.fetched = fetched  # until the end of `fresh()`: botocore may refresh again
        with self._refresh_lock:
            self._protected_refresh(is_mandatory=True)
        if forced:
            # Marked before any other request can use the new key: a rejection of it within
            # `hold` is then answered without another exchange.
            with self._state_lock:
                self._checked = (self._access_key, time.monotonic() + hold)

    def _already_checked(self, access_key: str | None) -> bool:
        with self._state_lock:
            key, until = self._checked
        return access_key is not None and access_key == key and time.monotonic() < until

    def retry_rejected(self, call: Callable[[], T]) -> T:
        """Run `call`; if S3 rejected the session (expired, revoked, unknown), refresh once and
        run it once more. A second failure is marked `after_refresh` for its own hint.

        A refresh happens once per set of credentials: AccessDenied for as long as they are
        used (after revocation the new session is allowed, while a permission-policy denial
        stays denied and costs no further STS call), the other rejections for
        REJECTION_COOLDOWN (a skewed clock or a persistent ExpiredToken is not fixed by
        exchanging again and again, and may be fixed later). Concurrent rejections of the same
        credentials share one exchange.
        """
        before = self.current_access_key()
        try:
            return call()
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            denied = code in DENIED_CODES
            if code not in REJECTED_SESSION_CODES and not denied:
                raise
            # The key the call was signed with: the one before it, or the first one it fetched.
            used = before or self.current_access_key()
            if self._already_checked(used):
                exc.after_refresh = True  # type: ignore[attr-defined]  # already fresh
                raise
            hold = math.inf if denied else REJECTION_COOLDOWN
            if not denied:
                self.refresh_now(used or "", hold)
            else:
                # A speculative refresh: if it fails, the denial is still the answer to give.
                try:
                    self.refresh_now(used or "", hold)
                except Exception:
                    log.warning("refresh after S3 AccessDenied failed", exc_info=True)
                    with self._state_lock:
                        self._checked = (used, math.inf)
                    raise exc from None
        try:
            return call()
        except ClientError as exc:
            exc.after_refresh = True  # type: ignore[attr-defined]
            raise


def _has_refresh_internals(credentials: DeferredRefreshableCredentials) -> bool:
    """Whether botocore's RefreshableCredentials still has the private state `_exchange` uses
    (botocore 1.44.8, botocore/credentials.py: `_refresh_lock`, `_protected_refresh`,
    `_mandatory_refresh_timeout`, `_access_key`)."""
    lock = getattr(credentials, "_refresh_lock", None)
    return (
        callable(getattr(lock, "__enter__", None))
        and callable(getattr(credentials, "_protected_refresh", None))
        and isinstance(getattr(credentials, "_mandatory_refresh_timeout", None), int | float)
        and hasattr(credentials, "_access_key")
    )


def web_identity_credentials(
    credential: IdentityCredential, settings: Settings, *, clock: Clock | None = None
) -> WebIdentityCredentials:
    """Self-refreshing AWS credentials for the role, obtained with the identity's Entra token.

    `clock` replaces botocore's notion of "now" for the refresh decision (tests move it forward
    instead of sleeping); production leaves it None.
    """
    limits = settings.limits
    sts = isolated_botocore_session().create_client(
        aws_services.STS, config=aws_client_config(settings, signature_version=UNSIGNED)
    )

    def sts_client(service_name: str, config: Config | None = None) -> Any:
        # The fetcher asks for an unsigned STS client each refresh; this one is built once.
        if service_name != aws_services.STS:
            raise ValueError(f"unexpected client {service_name!r} requested by the fetcher")
        return sts

    def entra_token() -> str:
        # Served from the credential's token cache while valid; Entra is only asked when needed.
        return credential.get_token(settings.federation_scope).token

    fetcher = AssumeRoleWithWebIdentityCredentialFetcher(
        client_creator=sts_client,
        web_identity_token_loader=entra_token,
        role_arn=settings.aws_role_arn,
        extra_args={
            "RoleSessionName": settings.role_session_name,
            "DurationSeconds": SESSION_DURATION_SECONDS,
        },
        cache=_NeverCache(),
    )
    cooldown = Cooldown(STS, limits.outage_cooldown)

    def fetch() -> dict[str, Any]:
        # Fail fast while STS is known to be down: each request would otherwise send its own
        # attempts to a service that is not answering.
        cooldown.check()
        with waiting_on(STS, limits.call_deadline) as call:
            try:
                fetched = fetcher.fetch_credentials()
                unusable = _unusable(fetched, clock)
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                # The fetcher reads response["Credentials"]["Expiration"]: a 200 answer without
                # them (an HTML page from a proxy, a partial document) is not a refusal.
                unusable = "its answer held no credentials"
                detail = f"{type(exc).__name__}: {exc}"
            except Exception as exc:
                if call.cut_off() and not isinstance(exc, ClientError | Unavailable):
                    raise cooldown.record_cut(cut_off(STS, call, exc)) from exc
                outage = _sts_outage(exc, limits)
                if outage is None:
                    raise
                raise cooldown.record(outage) from exc
            else:
                detail = f"expiry_time={fetched.get('expiry_time')!r}"
            if unusable:
                raise cooldown.record(Unavailable(STS, unusable, detail, limits.outage_cooldown))
        cooldown.clear()
        return fetched

    return WebIdentityCredentials(fetch, limits.call_deadline, clock, limits.hedge)


def _unusable(fetched: Any, clock: Clock | None) -> str | None:
    """Why credentials from STS cannot be used (None: they can): missing parts, or already
    expired (botocore would refuse to install them, and every call would exchange again)."""
    if not isinstance(fetched, dict) or not all(
        fetched.get(part) for part in ("access_key", "secret_key", "token", "expiry_time")
    ):
        return "its answer held no credentials"
    expiry = dt.datetime.fromisoformat(str(fetched["expiry_time"]).replace("Z", "+00:00"))
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=dt.UTC)
    now = clock() if clock is not None else dt.datetime.now(dt.UTC)
    if expiry <= now:
        return "the credentials it issued had already expired (is this host's clock right?)"
    return None


def s3_client(credentials: WebIdentityCredentials, settings: Settings) -> Any:
    """An S3 client that signs only with the web-identity credentials (refreshing as needed)."""
    session = isolated_botocore_session(_StaticProvider(credentials))
    return session.create_client(aws_services.S3, config=aws_client_config(settings))
