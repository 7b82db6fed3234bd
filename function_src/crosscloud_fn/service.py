"""What the three routes do, over clients built once per process and reused while warm.

A Functions worker process serves many invocations; building the credential and the SDK clients
per request would throw away the token cache and the STS credentials each time (the seed paid a
token request and an STS call on every request). `current()` builds one `CrossCloud` lazily from
the app settings and keeps it.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from azure.core.exceptions import ClientAuthenticationError
from azure.storage.blob import ContainerClient, ExponentialRetry

from crosscloud_fn import errors, telemetry
from crosscloud_fn.credentials import (
    Clock,
    managed_identity_credential,
    s3_client,
    web_identity_credentials,
)
from crosscloud_fn.readers import BlobReader, S3Reader
from crosscloud_fn.settings import Settings

WHOAMI_CLAIMS = ("aud", "iss", "sub", "oid", "appid", "roles", "exp")
T = TypeVar("T")


def jwt_claims(token: str) -> dict[str, Any]:
    """Decode a JWT's payload without verifying it: we are its holder, not its audience."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class BlobRetry(ExponentialRetry):
    """Storage's retry, minus retrying a refused token request, with backoffs sized for a
    function (the SDK's default starts at 15 s). Token acquisition runs inside the storage retry
    loop, so without this an unassigned or missing identity costs ~40 s before answering."""

    def __init__(self) -> None:
        super().__init__(initial_backoff=1, increment_base=2, retry_total=2, random_jitter_range=1)

    def increment(
        self, settings: dict[str, Any], request: Any, response: Any = None, error: Any = None
    ) -> bool:
        if isinstance(error, ClientAuthenticationError) and error.response is None:
            return False  # Entra/the MI endpoint said no; asking again will not change that
        return super().increment(settings, request, response=response, error=error)


class CrossCloud:
    """The per-process state: one identity credential, one Blob and one S3 client, a pool."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None, workers: int = 8) -> None:
        self.settings = settings
        self.credential = telemetry.ObservedIdentity(managed_identity_credential(settings))
        self.aws_credentials = web_identity_credentials(self.credential, settings, clock=clock)
        self.blob = BlobReader(
            ContainerClient(
                account_url=settings.blob_account_url,
                container_name=settings.blob_container,
                credential=self.credential,
                connection_timeout=5,
                read_timeout=20,
                retry_policy=BlobRetry(),
            )
        )
        self.s3 = S3Reader(
            s3_client(self.aws_credentials, settings), settings.s3_bucket, settings.s3_key_prefix
        )
        # Small and shared by concurrent invocations: each request holds two workers (one per
        # cloud) for the length of one store round trip.
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
        blobs, keys = self._both(self.blob.list_names, self.s3.list_keys, name=None)
        return {
            "identity": self._on_aws(self.identity, name=None),
            "azure": {"container": self.settings.blob_container, "blobs": blobs},
            "aws": {"bucket": self.settings.s3_bucket, "keys": keys},
        }

    def read(self, name: str) -> dict[str, Any]:
        azure, aws = self._both(lambda: self.blob.read(name), lambda: self.s3.read(name), name=name)
        return {"azure": azure, "aws": aws}

    def whoami(self) -> dict[str, Any]:
        claims = self._on_aws(self.federation_claims, name=None)
        return {claim: claims.get(claim) for claim in WHOAMI_CLAIMS}

    # ---- plumbing ------------------------------------------------------------------------------

    def _claims_for_hint(self) -> Mapping[str, Any] | None:
        # After an STS refusal the token is in the credential's cache: no new Entra request.
        return self.federation_claims()

    def _on_aws(self, work: Callable[[], T], name: str | None) -> T:
        try:
            return work()
        except Exception as exc:
            raise errors.from_aws(exc, self.settings, self._claims_for_hint, name) from None

    def _both(
        self, azure: Callable[[], Any], aws: Callable[[], Any], name: str | None
    ) -> tuple[Any, Any]:
        """Run both reads at once (the request costs max(azure, aws), not the sum)."""
        futures: tuple[Future, Future] = (
            self._pool.submit(telemetry.timed("azure", azure)),
            self._pool.submit(telemetry.timed("aws", aws)),
        )
        failures: list[errors.CrossCloudError] = []
        results: list[Any] = []
        for cloud, future in zip(("azure", "aws"), futures, strict=True):
            exc = future.exception()
            if exc is None:
                results.append(future.result())
            elif cloud == "azure":
                failures.append(errors.from_azure(exc, self.settings, name))
            else:
                failures.append(errors.from_aws(exc, self.settings, self._claims_for_hint, name))
        if not failures:
            return results[0], results[1]
        # A refusal (5xx) says more than a missing object in the other cloud; on a tie the
        # first (Azure) leads and the other is still named, so one answer shows both causes.
        first = max(failures, key=lambda e: (e.status >= 500, e.status == 413))
        others = [f for f in failures if f is not first]
        if others and others[0].status >= 500 and first.status >= 500:
            first.message += f" Also {others[0].code}: {others[0].message}"
        raise first

    def close(self) -> None:
        self._pool.shutdown(wait=True)
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
