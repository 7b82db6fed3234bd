"""What the three routes do, over clients built once per process and reused while warm.

A Functions worker process serves many invocations; building the credential and the SDK clients
per request would throw away the token cache and the STS credentials each time (the seed paid a
token request and an STS call on every request). `current()` builds one `CrossCloud` lazily from
the app settings and keeps it.

Each request has one time budget (`Limits.budget`, well under functionTimeout): its work runs on
a shared pool and the request stops waiting when the budget is spent, answering 504 with the
dependency still being waited for. Abandoned work that has not started is cancelled; work that
has started is cut off at its call's deadline (`dependencies.waiting_on`: at most `GRACE` after
the budget, its connection shut even if the peer is still dripping bytes), and the pool grows
(up to `MAX_WORKERS`) rather than make later requests queue behind it.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from azure.core.exceptions import ClientAuthenticationError
from azure.storage.blob import ExponentialRetry

from crosscloud_fn import deadlines, errors, telemetry
from crosscloud_fn.credentials import Clock, s3_client, web_identity_credentials
from crosscloud_fn.dependencies import BLOB, IDENTITY, S3, Activity, Unavailable, waiting_on
from crosscloud_fn.identity import managed_identity_credential
from crosscloud_fn.readers import BlobReader, S3Reader
from crosscloud_fn.settings import Settings

WHOAMI_CLAIMS = ("aud", "iss", "sub", "oid", "appid", "roles", "exp")
MAX_WORKERS = 32
"""Threads are started on demand up to this many: each request holds one or two while it runs,
and calls abandoned at a budget's end hold theirs until their deadline cuts them off."""
T = TypeVar("T")
deadlines.install()


def jwt_claims(token: str) -> dict[str, Any]:
    """Decode a JWT's payload without verifying it: we are its holder, not its audience.

    A token that is not a JWT (an opaque token from a misbehaving endpoint) is a malformed
    answer of the identity endpoint, not a crash."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, TypeError) as exc:
        claims, problem = None, f"{type(exc).__name__}"
    else:
        problem = "payload is not a JSON object"
    if not isinstance(claims, dict):
        raise Unavailable(
            IDENTITY, "the token it issued is not a JWT", f"unreadable token: {problem}", 1.0
        )
    return claims


class BlobRetry(ExponentialRetry):
    """Storage's retry, minus retrying a failed token request, with two attempts and backoffs
    sized for a function (the SDK's default: 3 retries starting at 15 s). Token acquisition runs
    inside the storage retry loop, so without this an unassigned or missing identity costs ~40 s
    before answering, and an identity outage (already retried by the credential, then reported
    as `dependencies.Unavailable`) would be retried again here."""

    def __init__(self) -> None:
        super().__init__(initial_backoff=1, increment_base=2, retry_total=1, random_jitter_range=1)

    def increment(
        self, settings: dict[str, Any], request: Any, response: Any = None, error: Any = None
    ) -> bool:
        if isinstance(error, ClientAuthenticationError) and error.response is None:
            return False  # Entra/the MI endpoint said no; asking again will not change that
        return super().increment(settings, request, response=response, error=error)


class CrossCloud:
    """The per-process state: one identity credential, one Blob and one S3 client, a pool."""

    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, workers: int = MAX_WORKERS
    ) -> None:
        self.settings = settings
        limits = settings.limits
        self.credential = telemetry.ObservedIdentity(managed_identity_credential(settings))
        self.aws_credentials = web_identity_credentials(self.credential, settings, clock=clock)
        self.blob = BlobReader.connect(
            settings.blob_account_url,
            settings.blob_container,
            self.credential,
            connect_timeout=limits.connect_timeout,
            read_timeout=limits.call_timeout,
            retry_policy=BlobRetry(),
        )
        self.s3 = S3Reader(
            s3_client(self.aws_credentials, settings), settings.s3_bucket, settings.s3_key_prefix
        )
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="crosscloud")

    # ---- identity ------------------------------------------------------------------------------

    def federation_claims(self) -> dict[str, Any]:
        """Claims of the token sent to STS (from the credential's cache when warm)."""
        return jwt_claims(self.credential.get_token(self.settings.federation_scope).token)

    def identity(self) -> dict[str, Any]:
        claims = self.federation_claims()
        return {
            "type": "UserAssigned" if self.settings.user_assigned else "SystemAssigned",
            "client_id": claims.get("appid"),
            "principal_id": claims.get("oid"),
        }

    # ---- routes --------------------------------------------------------------------------------

    def list_all(self) -> dict[str, Any]:
        def aws() -> tuple[tuple[list[str], bool], dict[str, Any]]:
            return self._s3(self.s3.list_keys), self.identity()

        results = self._gather(azure=lambda: self._blob(self.blob.list_names), aws=aws, name=None)
        (blobs, blobs_truncated), ((keys, keys_truncated), identity) = results
        return {
            "identity": identity,
            "azure": {
                "container": self.settings.blob_container,
                "blobs": blobs,
                "truncated": blobs_truncated,
            },
            "aws": {"bucket": self.settings.s3_bucket, "keys": keys, "truncated": keys_truncated},
        }

    def read(self, name: str) -> dict[str, Any]:
        azure, aws = self._gather(
            azure=lambda: self._blob(lambda: self.blob.read(name)),
            aws=lambda: self._s3(lambda: self.s3.read(name)),
            name=name,
        )
        return {"azure": azure, "aws": aws}

    def whoami(self) -> dict[str, Any]:
        (claims,) = self._gather(aws=self.federation_claims, name=None)
        return {claim: claims.get(claim) for claim in WHOAMI_CLAIMS}

    # ---- plumbing ------------------------------------------------------------------------------

    def _claims_for_hint(self) -> Mapping[str, Any] | None:
        # After an STS refusal the token is in the credential's cache: no new Entra request.
        return self.federation_claims()

    def _blob(self, work: Callable[[], T]) -> T:
        # A token request (its own deadline) and the reads (a restart included) in two calls'
        # time; a dripping Blob answer frees the worker then, not at the budget's end.
        with waiting_on(BLOB, 2 * self.settings.limits.call_deadline):
            return work()

    def _s3(self, work: Callable[[], T]) -> T:
        # Credentials first (the STS exchange and token request have their own deadlines),
        # then each S3 attempt within one call's deadline.
        bound = self.settings.limits.call_deadline

        def attempt() -> T:
            with waiting_on(S3, bound):
                return work()

        with waiting_on(S3), self.aws_credentials.fresh():
            return self.aws_credentials.retry_rejected(attempt)

    def _gather(self, name: str | None, **work: Callable[[], Any]) -> tuple[Any, ...]:
        """Run each cloud's work at once (a request costs the slowest, not the sum) within the
        request's budget; raise the most telling failure, or 504 naming what was still awaited."""
        budget = self.settings.limits.budget
        deadline = time.monotonic() + budget
        activities = {cloud: Activity(deadline) for cloud in work}
        futures: dict[str, Future] = {
            cloud: self._pool.submit(activities[cloud].run, telemetry.timed(cloud, task))
            for cloud, task in work.items()
        }
        wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
        failures: list[errors.CrossCloudError] = []
        results: list[Any] = []
        waiting: list[str | None] = []
        for cloud, future in futures.items():
            if not future.done():
                future.cancel()  # not started yet: it never will be; started: it ends by itself
                waiting.append(activities[cloud].waiting_on())
                continue
            exc = future.exception()
            if exc is None:
                results.append(future.result())
            elif cloud == "azure":
                failures.append(errors.from_azure(exc, self.settings, name))
            else:
                failures.append(errors.from_aws(exc, self.settings, self._claims_for_hint, name))
        if waiting:
            raise errors.timeout(
                budget, waiting, failures, retry_after=self.settings.limits.outage_cooldown
            )
        if not failures:
            return tuple(results)
        # A refusal (5xx) says more than a missing object in the other cloud; on a tie the
        # first (Azure) leads and the other is still named, so one answer shows both causes.
        first = max(failures, key=lambda e: (e.status >= 500, e.status == 413))
        others = [f for f in failures if f is not first]
        if others and others[0].status >= 500 and first.status >= 500:
            first.message += f" Also {others[0].code}: {others[0].message}"
        raise first

    def close(self) -> None:
        # Calls still running end within their own timeouts; nobody waits for them.
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.blob.container.close()
        self.s3.client.close()
        self.credential.close()


_lock = threading.Lock()
_current: CrossCloud | None = None


def current() -> CrossCloud:
    """The process's `CrossCloud`, built from the app settings on first use."""
    global _current
    runtime = _current
    if runtime is None:
        with _lock:
            if _current is None:
                _current = CrossCloud(Settings.from_env())
            runtime = _current
    return runtime


def replace(runtime: CrossCloud | None) -> None:
    """Swap the process's `CrossCloud` (tests and benches); the old one is closed."""
    global _current
    with _lock:
        previous, _current = _current, runtime
    if previous is not None and previous is not runtime:
        previous.close()
