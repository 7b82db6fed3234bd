"""The tenant's signing keys for the front door (crosscloud_fn/caller_auth.py), cached per process.

Fetched from `{authority}/{tenant}/discovery/v2.0/keys` with PyJWT's `PyJWKClient` (its parsing
and signing-key selection; the HTTP GET here uses `requests`, which honours REQUESTS_CA_BUNDLE
as the SDKs do, with no redirects, timeouts and a bounded answer). A token with an unknown `kid`
refreshes the set at most once per `refresh_seconds` (300 s, Microsoft.IdentityModel's
`ConfigurationManager.DefaultRefreshInterval`); the whole set is refreshed after 12 h (its
`DefaultAutomaticRefreshInterval`); while the endpoint is down the cached keys keep serving, and
with nothing cached the caller gets `KeysUnavailable` (a 503).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import jwt
import requests
from jwt import PyJWK, PyJWKClient

log = logging.getLogger("crosscloud")

DEFAULT_REFRESH_SECONDS = 300.0
MAX_KEY_SET_AGE = 12 * 3600.0
"""Past this age the key set is fetched again even without an unknown `kid` (served stale if the
endpoint is down)."""
FAILED_FETCH_BACKOFF = 5.0
"""With nothing cached, a failed fetch is not retried sooner: requests fail fast with 503."""
MAX_KEYS_BYTES = 512 * 1024
"""Entra's key set is a few KB; a larger answer is not a key set."""


class KeysUnavailable(Exception):
    """The key set could not be fetched and nothing usable is cached."""


class _BoundedJWKClient(PyJWKClient):
    """PyJWKClient fetching with `requests` (which honours REQUESTS_CA_BUNDLE, as the SDKs here
    do), without redirects, with connect/read timeouts and a bounded answer size."""

    def fetch_data(self) -> Any:
        try:
            with requests.get(
                self.uri,
                timeout=(min(3.0, self.timeout), self.timeout),
                allow_redirects=False,
                stream=True,
                headers={"Accept": "application/json"},
            ) as response:
                if response.status_code != 200:
                    raise KeysUnavailable(f"HTTP {response.status_code}")
                body = response.raw.read(MAX_KEYS_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise KeysUnavailable(type(exc).__name__) from None
        if len(body) > MAX_KEYS_BYTES:
            raise KeysUnavailable(f"answer larger than {MAX_KEYS_BYTES} bytes")
        try:
            return json.loads(body)
        except ValueError:
            raise KeysUnavailable("answer is not JSON") from None


class CallerKeys:
    """The tenant's signing keys, cached per process (see the module docstring)."""

    def __init__(
        self,
        uri: str,
        *,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        fetch_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uri = uri
        self.refresh_seconds = refresh_seconds
        self.fetch_timeout = fetch_timeout
        self._clock = clock
        # PyJWT's own set cache would forget the keys when a refresh fails: we keep them here.
        self._client = _BoundedJWKClient(uri, cache_jwk_set=False, timeout=fetch_timeout)
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = threading.Lock()
        # A fetch runs here so that a peer dripping bytes cannot hold a request past the timeout.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="caller-keys")
        self.fetches = 0
        """Fetch attempts so far (successful or not): benches and tests count them."""

    def key(self, kid: str) -> PyJWK | None:
        """The published key `kid`, or None when the tenant does not publish it. Waits at most
        `fetch_timeout` in all (for another request's fetch and its own together)."""
        now = self._clock()
        key = self._keys.get(kid)
        if key is not None and not self._stale(now):
            return key  # the warm path: no lock, no fetch
        deadline = time.monotonic() + self.fetch_timeout
        if not self._lock.acquire(timeout=self.fetch_timeout):
            if key is not None:
                return key
            raise KeysUnavailable("another request's key fetch is still running")
        try:
            key = self._keys.get(kid)
            if key is not None and not self._stale(now):
                return key
            if self._may_fetch(now):
                try:
                    self._fetch(max(0.1, deadline - time.monotonic()))
                except KeysUnavailable as exc:
                    log.warning("caller signing keys not refreshed from %s: %s", self.uri, exc)
                    if not self._keys:
                        raise
                    # Cached keys keep serving while the endpoint is down.
                key = self._keys.get(kid)
            elif not self._keys:
                raise KeysUnavailable("the last fetch failed moments ago")
            return key
        finally:
            self._lock.release()

    @property
    def retry_after(self) -> float:
        return FAILED_FETCH_BACKOFF

    def _stale(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at >= MAX_KEY_SET_AGE

    def _may_fetch(self, now: float) -> bool:
        if self._attempted_at is None:
            return True
        interval = (
            self.refresh_seconds if self._keys else min(FAILED_FETCH_BACKOFF, self.refresh_seconds)
        )
        return now - self._attempted_at >= interval

    def _fetch(self, wait: float) -> None:
        self._attempted_at = self._clock()
        self.fetches += 1
        future = self._pool.submit(self._client.get_signing_keys, True)
        try:
            signing_keys = future.result(timeout=wait)
        except FutureTimeout:
            raise KeysUnavailable(f"no key set within {wait:.1f} s") from None
        except KeysUnavailable:
            raise
        except jwt.PyJWTError as exc:  # not a key set, or no signing keys in it
            raise KeysUnavailable(type(exc).__name__) from None
        self._keys = {
            key.key_id: key for key in signing_keys if key.key_id and key.key_type == "RSA"
        }
        self._fetched_at = self._clock()
