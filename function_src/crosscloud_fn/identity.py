"""The app's managed identity: `ManagedIdentityCredential` with outages told apart from refusals.

`ManagedIdentityCredential(client_id=...)` for a user-assigned identity,
`ManagedIdentityCredential()` for the system-assigned one. Its token cache (MSAL's) is per
instance, so one instance lives for the whole process. Every token request is bounded (two
attempts, explicit timeouts, a total deadline), never sleeps on the endpoint's `Retry-After`
(`IdentityRetryPolicy`), and concurrent requests for one scope share one request in flight.
Outages raise `dependencies.Unavailable` and start a cooldown as long as the endpoint asked, up
to `dependencies.MAX_RETRY_AFTER`.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from azure.core.exceptions import (
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.policies import RetryPolicy
from azure.identity import ManagedIdentityCredential

from crosscloud_fn.dependencies import (
    IDENTITY,
    MAX_RETRY_AFTER,
    Cooldown,
    SingleFlight,
    Unavailable,
    cut_off,
    waiting_on,
)
from crosscloud_fn.settings import Limits, Settings

T = TypeVar("T")

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
        self.flight = SingleFlight(IDENTITY, limits.hedge)
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
                    raise self.cooldown.record_cut(cut_off(IDENTITY, call, exc)) from exc
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
