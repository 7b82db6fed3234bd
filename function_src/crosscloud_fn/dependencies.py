"""The four services a request waits on, what each task is waiting on right now, and outages.

- `waiting_on(dep)` marks the current worker's task as waiting on a dependency; when a request's
  time budget runs out, `Activity.waiting_on()` of each unfinished task names the slow one.
- `Unavailable` is what the wrappers around the identity endpoint and STS raise on an outage
  (5xx, throttling, a timeout, no connection): the caller gets `*_unavailable` (503) with a
  "retry later" hint; the detail (which may name internal hosts) goes to the log only.
- `Cooldown` fails calls fast for a short while after an outage (or for as long as the service
  asked with `Retry-After`, up to `MAX_RETRY_AFTER`), so that during one every request does not
  send its own retries to a service that is down. The wait is never slept inside a request.
- `SingleFlight` makes concurrent requests that need the same thing (a token, an STS exchange)
  share one call in flight instead of each making its own.
- Each `waiting_on` block is also a `deadlines.deadline`: the call is cut off (its connection
  shut) at the end of its own allowance or shortly after its request's budget, whichever is first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from botocore.exceptions import ClientError

from crosscloud_fn import deadlines

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
MAX_RETRY_AFTER = 30.0
"""Longest upstream `Retry-After` honoured (seconds): a longer one is remembered as this long, so a
service that asks for minutes is asked again once, half a minute later."""
GRACE = 1.0
"""How long a call may outlive its request's budget (seconds): the request answers 504 naming
the dependency at the budget, and the call is cut off just after."""


class Activity:
    """What one task (one cloud's half of a request) is waiting on; read from another thread."""

    def __init__(self, deadline: float | None = None) -> None:
        self._stack: list[str] = []
        self._lock = threading.Lock()
        self.deadline = deadline
        """When the request's budget ends (`time.monotonic()`); None outside a request."""

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


class Call:
    """The deadline of one `waiting_on` block."""

    def __init__(self, own: float | None, at: float | None) -> None:
        self.own = own
        self.at = at

    def cut_off(self) -> bool:
        """Whether the deadline has passed (the connection was, or is about to be, shut)."""
        return self.at is not None and time.monotonic() >= self.at

    def cut_by_budget(self) -> bool:
        """Cut off by a request's budget rather than this call's own allowance: no evidence of
        an outage (the request had spent its time elsewhere), so no cooldown is started."""
        return self.cut_off() and (self.own is None or (self.at is not None and self.at < self.own))


@contextmanager
def waiting_on(dependency: str, seconds: float | None = None) -> Iterator[Call]:
    """Mark the current task as waiting on `dependency` for the length of the block, and end
    the block's calls within `seconds` (None: its request's budget) plus `GRACE` after the
    request's budget at the latest. A failure after the deadline is an outage of `dependency`."""
    activity: Activity | None = getattr(_local, "activity", None)
    own = None if seconds is None else time.monotonic() + seconds
    limits = [] if own is None else [own]
    if activity is not None and activity.deadline is not None:
        limits.append(activity.deadline + GRACE)
    if activity is not None:
        activity._push(dependency)
    call = Call(own, None)
    try:
        with deadlines.deadline(min(limits) if limits else None) as at:
            call.at = at
            try:
                yield call
            except Unavailable as exc:
                if exc.dependency == dependency and call.cut_off() and not exc.budget_cut:
                    # e.g. "its answer was not Blob Storage's": a cut answer is malformed too,
                    # but the cause to name is the cut.
                    raise cut_off(dependency, call, exc) from exc
                raise
            except Exception as exc:
                if not call.cut_off() or not _is_failure(exc):
                    raise
                raise cut_off(dependency, call, exc) from exc
    except deadlines.CutOff as exc:
        # The block "succeeded" with a connection shut under it: a truncated answer.
        raise cut_off(dependency, call, exc) from exc
    finally:
        if activity is not None:
            activity._pop()


def cut_off(dependency: str, call: Call, exc: BaseException) -> Unavailable:
    """The outage of a call ended at its deadline (marked `budget_cut` if a budget ended it)."""
    outage = Unavailable(
        dependency,
        "no complete answer in time (the call was cut off)",
        f"{type(exc).__name__}: {exc}",
        1.0,
    )
    outage.budget_cut = call.cut_by_budget()
    return outage


def _is_failure(exc: Exception) -> bool:
    """Errors that a cut-off connection causes, not answers that arrived just in time (an S3
    error document, an HTTP error status, or our own CrossCloudError such as 404 or 413)."""
    if isinstance(exc, ClientError) or getattr(exc, "status", None) is not None:
        return False
    return not (isinstance(exc, HttpResponseError) and (exc.status_code or 0) >= 400)


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
        self.budget_cut = False
        """Cut off because a request's budget ended, not because the service failed."""


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

    def record(self, outage: Unavailable, asked: float | None = None) -> Unavailable:
        """Start the cooldown: `self.seconds`, or what the service `asked` (Retry-After) up to
        `MAX_RETRY_AFTER`, whichever is longer. The outage then carries that wait."""
        seconds = max(self.seconds, min(asked or 0.0, MAX_RETRY_AFTER))
        outage.retry_after = seconds
        with self._lock:
            self._until = time.monotonic() + seconds
            self._last = outage
        return outage

    def record_cut(self, outage: Unavailable) -> Unavailable:
        """A call cut off at its own deadline starts the cooldown; one cut off by its request's
        budget does not (the service may be fine: the request had spent its time elsewhere)."""
        return outage if outage.budget_cut else self.record(outage)

    def clear(self) -> None:
        with self._lock:
            self._last = None


class _Flight:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.done = threading.Event()
        self.result: object = None
        self.error: BaseException | None = None
        self.running = 1
        """Calls of this flight still running: the leader's, and a hedge's once one started."""
        self.hedged = False


class SingleFlight:
    """Concurrent `run(key, work)` calls share one `work()` in flight: the first caller runs it,
    the others wait for its outcome until their own deadline. A flight older than `hedge`
    seconds gets one second call (a hedge, made by one waiter) in case the first is stuck on a
    bad connection; the first success answers everyone. So a burst costs one call, two at most.

    Why our own: azure-identity and botocore serialise nothing here (botocore's refresh lock
    has no timeout and is held across the whole exchange, which is what `credentials` avoids).
    """

    def __init__(self, dependency: str, hedge: float = 1.0) -> None:
        self.dependency = dependency
        self.hedge = hedge
        self._lock = threading.Lock()
        self._flights: dict[object, _Flight] = {}
        self.calls = 0
        """`work()` calls made so far, hedges included (for tests and benches)."""

    def run(self, key: object, work: Callable[[], T], wait: float) -> T:
        """`work()`, or the outcome of the same `work` already in flight (waited for at most
        `wait` seconds, or until the current deadline if that is earlier). A flight cut off by
        its callers' budgets is no answer: a waiter with time left then leads a new one."""
        while True:
            flight, leader = self._join(key)
            if leader:
                return self._run(key, flight, work)
            with waiting_on(self.dependency):
                age = time.monotonic() - flight.started
                done = flight.done.wait(min(deadlines.remaining(wait), max(0.0, self.hedge - age)))
                if not done and self._take_hedge(flight):
                    return self._run(key, flight, work)
                done = done or flight.done.wait(deadlines.remaining(wait))
            if not done:
                raise Unavailable(
                    self.dependency,
                    "no answer in time (waited for the call another request made)",
                    "a shared call in flight did not finish before this request's deadline",
                    1.0,
                )
            error = flight.error
            if error is None:
                return flight.result  # type: ignore[return-value]
            if not (getattr(error, "budget_cut", False) and deadlines.remaining(wait) > 0):
                raise error

    def _join(self, key: object) -> tuple[_Flight, bool]:
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
                self.calls += 1
        return flight, leader

    def _take_hedge(self, flight: _Flight) -> bool:
        with self._lock:
            if flight.hedged or flight.done.is_set() or deadlines.passed():
                return False
            flight.hedged = True
            flight.running += 1
            self.calls += 1
        return True

    def _run(self, key: object, flight: _Flight, work: Callable[[], T]) -> T:
        """One call of the flight (the leader's or the hedge): the first success completes the
        flight; a failure does only once no call of it is still running."""
        try:
            result = work()
        except BaseException as exc:
            self._finish(key, flight, error=exc)
            raise
        self._finish(key, flight, result=result)
        return result

    def _finish(
        self,
        key: object,
        flight: _Flight,
        result: object = None,
        error: BaseException | None = None,
    ) -> None:
        with self._lock:
            flight.running -= 1
            if flight.done.is_set() or (error is not None and flight.running > 0):
                return
            flight.result, flight.error = result, error
            if self._flights.get(key) is flight:
                del self._flights[key]
            flight.done.set()
