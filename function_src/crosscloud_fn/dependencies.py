"""The four services a request waits on, what each task is waiting on right now, and outages.

- `waiting_on(dep)` marks the current worker's task as waiting on a dependency; when a request's
  time budget runs out, `Activity.waiting_on()` of each unfinished task names the slow one.
- `Unavailable` is what the wrappers around the identity endpoint and STS raise on an outage
  (5xx, throttling, a timeout, no connection): the caller gets `*_unavailable` (503) with a
  "retry later" hint; the detail (which may name internal hosts) goes to the log only.
- `Cooldown` fails calls fast for a short while after an outage, so that during one every
  request does not send its own retries to a service that is down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from azure.core.exceptions import ClientAuthenticationError

IDENTITY = "identity"
STS = "sts"
S3 = "s3"
BLOB = "blob"

DESCRIPTIONS = {
    IDENTITY: "the managed identity endpoint (Microsoft Entra ID)",
    STS: "AWS STS",
    S3: "Amazon S3",
    BLOB: "Azure Blob Storage",
}

T = TypeVar("T")
_local = threading.local()


class Activity:
    """What one task (one cloud's half of a request) is waiting on; read from another thread."""

    def __init__(self) -> None:
        self._stack: list[str] = []
        self._lock = threading.Lock()

    def waiting_on(self) -> str | None:
        """The innermost dependency call in progress (None: not started or between calls)."""
        with self._lock:
            return self._stack[-1] if self._stack else None

    def _push(self, dependency: str) -> None:
        with self._lock:
            self._stack.append(dependency)

    def _pop(self) -> None:
        with self._lock:
            self._stack.pop()

    def run(self, work: Callable[[], T]) -> T:
        """Run `work` in this thread with `waiting_on` marks recorded here."""
        previous = getattr(_local, "activity", None)
        _local.activity = self
        try:
            return work()
        finally:
            _local.activity = previous


@contextmanager
def waiting_on(dependency: str) -> Iterator[None]:
    """Mark the current task as waiting on `dependency` for the length of the block."""
    activity: Activity | None = getattr(_local, "activity", None)
    if activity is None:
        yield
        return
    activity._push(dependency)
    try:
        yield
    finally:
        activity._pop()


class Unavailable(ClientAuthenticationError):
    """A dependency is down, throttling or did not answer in time (not a refusal).

    A `ClientAuthenticationError` without a response so that Azure SDK pipelines that asked for
    a token propagate it at once instead of retrying (see `service.BlobRetry`).
    """

    def __init__(self, dependency: str, reason: str, detail: str, retry_after: float) -> None:
        super().__init__(message=f"{DESCRIPTIONS[dependency]} is unavailable: {reason}")
        self.dependency = dependency
        self.reason = reason
        """Safe to show: e.g. "no answer within 5 s", "HTTP 503", "Throttling"."""
        self.detail = detail
        """The underlying error text: for the log only (it may name internal hosts and ports)."""
        self.retry_after = retry_after


class Cooldown:
    """After an outage, refuse calls to one dependency for `seconds` (then let one through)."""

    def __init__(self, dependency: str, seconds: float) -> None:
        self.dependency = dependency
        self.seconds = seconds
        self._lock = threading.Lock()
        self._until = 0.0
        self._last: Unavailable | None = None

    def check(self) -> None:
        """Raise the last outage again while the cooldown lasts."""
        with self._lock:
            remaining = self._until - time.monotonic()
            last = self._last
        if last is not None and remaining > 0:
            raise Unavailable(
                self.dependency,
                f"{last.reason} (not asked again for {remaining:.1f} s)",
                last.detail,
                remaining,
            )

    def record(self, outage: Unavailable) -> Unavailable:
        with self._lock:
            self._until = time.monotonic() + self.seconds
            self._last = outage
        return outage

    def clear(self) -> None:
        with self._lock:
            self._last = None
