"""The managed identity, and AWS credentials that come from it and refresh themselves.

Azure: `ManagedIdentityCredential(client_id=...)` for a user-assigned identity,
`ManagedIdentityCredential()` for the system-assigned one. Its token cache (MSAL's) is per
instance, so one instance lives for the whole process.

AWS: botocore's `AssumeRoleWithWebIdentityCredentialFetcher`, fed with the identity's token for
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
STS exchange in flight (`SingleFlight`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import botocore.session
from azure.core.exceptions import (
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.policies import RetryPolicy
from azure.identity import ManagedIdentityCredential
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
from crosscloud_fn.dependencies import (
    IDENTITY,
    MAX_RETRY_AFTER,
    STS,
    Cooldown,
    SingleFlight,
    Unavailable,
    cut_off,
    waiting_on,
)
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
# How App Service relays a failed token request (msal puts "statusCode, message" in the error).
_RELAYED_STATUS = re.compile(r"\)\s*(5\d\d|429)\s*,")


_advice = threading.local()


class IdentityRetryPolicy(RetryPolicy):
    """azure-core's RetryPolicy for the identity endpoint, minus sleeping on `Retry-After`.

    azure-core retries any answer that carries `Retry-After` and sleeps for it first
    (`RetryPolicyBase.is_retry` / `_sleep_for_retry`): a throttled endpoint asking for 60 s held
    every request for its whole budget (issue 20). Here such an answer (and any 429) is returned
    at once; its advice is noted for this thread (`_take_advice`) so the cooldown lasts as long
    as asked, up to MAX_RETRY_AFTER. The header MSAL then reads is capped the same way: MSAL
    replays a throttled answer without asking for as long as it says, up to 3600 s
    (msal/throttled_http_client.py `RetryAfterParser`). Other failures are retried as before.
    """

    def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
        http = response.http_response
        asked = self.get_retry_after(response)
        if http.status_code == 429 or (http.status_code >= 400 and asked is not None):
            _advice.value = (http.status_code, asked)
            if asked is not None and asked > MAX_RETRY_AFTER:
                http.headers["Retry-After"] = str(int(MAX_RETRY_AFTER))
            return False
        retry = bool(super().is_retry(settings, response))
        if http.status_code >= 500 and not retry:
            _advice.value = (http.status_code, None)  # the last answer, not retried
        return retry


def _take_advice() -> tuple[int, float | None] | None:
    """(status, Retry-After seconds) of this thread's last throttled or failed answer, once."""
    value = getattr(_advice, "value", None)
    _advice.value = None
    return value


def _mi_outage(
    exc: Exception, limits: Limits, advice: tuple[int, float | None] | None = None
) -> Unavailable | None:
    """The outage behind a failed token request, or None for a refusal (4xx, AADSTS...)."""
    if advice is not None and not isinstance(exc, ServiceRequestError | ServiceResponseError):
        status, asked = advice
        reason = f"HTTP {status}" + (f", asked to wait {asked:g} s" if asked else "")
        return Unavailable(IDENTITY, reason, f"{type(exc).__name__}: {exc}", limits.outage_cooldown)
    if isinstance(exc, ServiceResponseTimeoutError):
        reason = f"no answer within {limits.call_timeout:g} s"
    elif isinstance(exc, ServiceRequestError):
        reason = "could not connect"
    elif isinstance(exc, ServiceResponseError):
        reason = "the connection broke"
    elif isinstance(exc, ClientAuthenticationError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        relayed = _RELAYED_STATUS.search(str(exc.message))
        if status is not None and (status >= 500 or status == 429):
            reason = f"HTTP {status}"
        elif relayed:
            reason = f"HTTP {relayed[1]}"
        else:
            return None
    elif isinstance(exc, ValueError):
        reason = "the answer was not a token response"  # e.g. an HTML error page from a proxy
    else:
        return None
    return Unavailable(IDENTITY, reason, f"{type(exc).__name__}: {exc}", limits.outage_cooldown)


class IdentityCredential:
    """`ManagedIdentityCredential` with outages told apart from refusals, and a cooldown.

    While a token for a scope is known to be valid the call goes straight to the credential (MSAL
    answers it from its cache); only scopes that need the endpoint are failed fast in a cooldown.
    """

    def __init__(self, inner: ManagedIdentityCredential, limits: Limits) -> None:
        self.inner = inner
        self.limits = limits
        self.cooldown = Cooldown(IDENTITY, limits.outage_cooldown)
        self.flight = SingleFlight(IDENTITY)
        """One token request per scope in flight; concurrent requests wait for it."""
        self._valid_until: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return self._call(scopes, lambda: self.inner.get_token(*scopes, **kwargs))

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        return self._call(scopes, lambda: self.inner.get_token_info(*scopes, options=options))

    def _call(self, scopes: tuple[str, ...], fetch: Callable[[], T]) -> T:
        with self._lock:
            cached = self._valid_until.get(scopes, 0) > time.time() + 300
        if cached:
            return self._fetch(scopes, fetch)  # from MSAL's cache
        self.cooldown.check()
        return self.flight.run(
            scopes, lambda: self._fetch(scopes, fetch), self.limits.call_deadline
        )

    def _fetch(self, scopes: tuple[str, ...], fetch: Callable[[], T]) -> T:
        with waiting_on(IDENTITY, self.limits.call_deadline) as call:
            _take_advice()
            try:
                token = fetch()
            except Exception as exc:
                advice = _take_advice()
                if call.cut_off() and advice is None:
                    raise _recorded(self.cooldown, cut_off(IDENTITY, call, exc)) from exc
                outage = _mi_outage(exc, self.limits, advice)
                if outage is None:
                    raise
                raise self.cooldown.record(outage, advice[1] if advice else None) from exc
        expires_on = float(token.expires_on)  # type: ignore[attr-defined]
        if not math.isfinite(expires_on) or expires_on <= time.time():
            # msal turns App Service's `expires_on` into `expires_in` against this host's clock.
            raise self.cooldown.record(
                Unavailable(
                    IDENTITY,
                    "the token it issued has already expired (is this host's clock right?)",
                    f"expires_on={expires_on} now={time.time():.0f}",
                    self.limits.outage_cooldown,
                )
            )
        self.cooldown.clear()
        with self._lock:
            self._valid_until[scopes] = expires_on
        return token

    def close(self) -> None:
        self.inner.close()


def _recorded(cooldown: Cooldown, outage: Unavailable) -> Unavailable:
    """A call cut off at its own deadline starts the cooldown; one cut off by its request's
    budget does not (the service may be fine: the request had spent its time elsewhere)."""
    return outage if outage.budget_cut else cooldown.record(outage)


def managed_identity_credential(settings: Settings) -> IdentityCredential:
    """The app's identity, chosen by the app setting (never DefaultAzureCredential's guesswork).

    azure-identity passes these keywords to its azure-core pipeline: `RequestsTransport`
    (connection_timeout, read_timeout; default 300 s each) and `RetryPolicy` (retry_total,
    retry_backoff_*; default 10 retries, 3 on read errors), so a stuck endpoint costs at most two
    attempts of `call_timeout` instead of minutes.
    """
    limits = settings.limits
    bounds: dict[str, Any] = {
        "connection_timeout": limits.connect_timeout,
        "read_timeout": limits.call_timeout,
        "retry_total": 1,
        "retry_backoff_factor": 0.2,
        "retry_backoff_max": 1,
    }
    if os.environ.get("IDENTITY_ENDPOINT"):
        # App Service / Functions (and Service Fabric, Arc): their clients take azure-identity's
        # `retry_policy_class` (azure/identity/_internal/pipeline.py build_pipeline). The IMDS
        # client sets its own and would fail on a second one, so it is only given here.
        bounds["retry_policy_class"] = IdentityRetryPolicy
    if settings.identity_client_id:
        inner = ManagedIdentityCredential(client_id=settings.identity_client_id, **bounds)
    else:
        inner = ManagedIdentityCredential(**bounds)
    return IdentityCredential(inner, limits)


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
        self, fetch: Callable[[], dict[str, Any]], wait: float, clock: Clock | None
    ) -> None:
        if clock is None:
            super().__init__(self._fetched_or_fetch, CREDENTIAL_METHOD)
        else:
            super().__init__(self._fetched_or_fetch, CREDENTIAL_METHOD, time_fetcher=clock)
        self._fetch = fetch
        self._wait = wait
        self.flight = SingleFlight(STS)
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
                    raise _recorded(cooldown, cut_off(STS, call, exc)) from exc
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

    return WebIdentityCredentials(fetch, limits.call_deadline, clock)


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
