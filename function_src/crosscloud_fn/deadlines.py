"""Total deadlines for HTTP calls: at the deadline the connection is shut, whatever it is doing.

Why our own code: every SDK here times out per socket operation only. urllib3's `Timeout` and
requests' `timeout` bound each wait for a byte ("not a time limit on the entire response
download", https://requests.readthedocs.io/en/latest/user/advanced/#timeouts; urllib3's
`Timeout.read_timeout` is set once on the socket per request), azure-core's `RetryPolicy(timeout)`
is checked between attempts, and botocore has no total timeout at all. A peer that sends one
byte a second therefore holds the calling thread for as long as it likes (issue 20: 40 such reads
filled the pool and the instance answered 504 for minutes after S3 had recovered).

How: `deadline(at)` marks the current thread's calls until `at` (`time.monotonic()`; nested
blocks keep the earliest). Every urllib3 connection used for a request inside such a block - the
transport of azure-core (requests), of MSAL (through azure-core) and of botocore alike - is
registered with one watchdog thread, which shuts the connection's socket down when the deadline
passes. The blocked read then fails at once and the SDK raises its own connection error; a
request started after the deadline fails before it is sent; and a block that returns normally
although one of its connections was shut raises `CutOff` (a cut answer can parse as a complete,
empty one).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from itertools import count
from typing import Any

import urllib3.connection
import urllib3.connectionpool

log = logging.getLogger(__name__)
_local = threading.local()
_POLL = 0.05
"""How often the watchdog looks (seconds): a connection is shut at most this late."""


class DeadlineExceeded(TimeoutError):
    """A request was about to be sent after its call's deadline."""


class CutOff(DeadlineExceeded):
    """A `deadline` block ended normally although one of its connections was shut: what it
    returns cannot be trusted (http.client takes EOF inside the headers for their end, and
    botocore reads no Content-Length it did not get, so a cut answer can look like an empty
    200)."""


class _Watchdog:
    """One daemon thread that shuts down the sockets of connections past their deadline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._watched: dict[int, tuple[float, Any]] = {}
        self._cut: set[int] = set()
        self._ids = count()
        self._thread: threading.Thread | None = None
        self.shut = 0
        """Connections shut at their deadline so far (for tests and benches)."""

    def watch(self, connection: Any, at: float) -> int:
        with self._lock:
            token = next(self._ids)
            self._watched[token] = (at, connection)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="crosscloud-deadlines", daemon=True
                )
                self._thread.start()
        self._wake.set()
        return token

    def release(self, token: int) -> None:
        """Stop watching one connection that went back to its pool: from then on it may carry
        another request (another thread's), which this deadline must never cut. Whether it was
        cut before stays recorded for its block."""
        with self._lock:
            self._watched.pop(token, None)

    def unwatch(self, tokens: list[int]) -> bool:
        """Stop watching; whether any of these connections was shut at its deadline."""
        with self._lock:
            for token in tokens:
                self._watched.pop(token, None)
            cut = not self._cut.isdisjoint(tokens)
            self._cut.difference_update(tokens)
        return cut

    def _run(self) -> None:
        while True:
            try:
                idle = self._shut_due()
            except Exception:  # the one watchdog must outlive any surprise
                log.exception("deadline watchdog: shutting a connection failed")
                idle = False
            if idle:
                self._wake.wait()
                self._wake.clear()
            else:
                time.sleep(_POLL)

    def _shut_due(self) -> bool:
        """Shut every watched connection past its deadline; whether nothing is watched."""
        with self._lock:
            now = time.monotonic()
            due = [t for t, (at, _) in self._watched.items() if at <= now]
            idle = not self._watched
        for token in due:
            with self._lock:
                entry = self._watched.get(token)
                # Gone: its block ended, or the connection went back to its pool meanwhile.
                sock = None if entry is None else getattr(entry[1], "sock", None)
                if sock is None:
                    continue  # or still connecting (bounded by the connect timeout)
                del self._watched[token]
                self._cut.add(token)
                self.shut += 1  # before the shutdown wakes the reader up
            _shut(sock)
        return idle


def _shut(sock: socket.socket) -> None:
    # socket.socket.shutdown, not SSLSocket.shutdown: the latter drops the SSL object that the
    # blocked reader thread is using. Shutting the descriptor down wakes that reader with EOF.
    with suppress(OSError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


WATCHDOG = _Watchdog()


def _levels() -> list[tuple[float, list[int]]]:
    levels = getattr(_local, "levels", None)
    if levels is None:
        levels = _local.levels = []
    return levels


def current() -> float | None:
    """The current thread's deadline (`time.monotonic()`), or None outside any block."""
    levels = _levels()
    return levels[-1][0] if levels else None


def remaining(default: float) -> float:
    """Seconds left before the current deadline (`default` outside any block), at least 0."""
    at = current()
    return default if at is None else max(0.0, at - time.monotonic())


@contextmanager
def deadline(at: float | None) -> Iterator[float | None]:
    """Calls in the block end by `at` (monotonic; None: no new limit). Yields the effective one."""
    levels = _levels()
    outer = current()
    effective = at if outer is None else (outer if at is None else min(at, outer))
    if effective is None:
        yield None
        return
    tokens: list[int] = []
    levels.append((effective, tokens))
    failed = False
    try:
        yield effective
    except BaseException:
        failed = True
        raise
    finally:
        levels.pop()
        cut = WATCHDOG.unwatch(tokens)
        if cut and not failed:
            raise CutOff("a connection of this call was shut at its deadline")


def passed() -> bool:
    """Whether the current thread's deadline has passed."""
    at = current()
    return at is not None and time.monotonic() >= at


_original_request = urllib3.connection.HTTPConnection.request


def _request(self: Any, *args: Any, **kwargs: Any) -> Any:
    levels = _levels()
    if levels:
        at, tokens = levels[-1]
        if time.monotonic() >= at:
            raise DeadlineExceeded("the call's deadline passed before this request was sent")
        token = WATCHDOG.watch(self, at)
        tokens.append(token)
        self._crosscloud_deadline_token = token
    return _original_request(self, *args, **kwargs)


_original_put_conn = urllib3.connectionpool.HTTPConnectionPool._put_conn


def _put_conn(self: Any, conn: Any) -> None:
    # A connection goes back to its pool once its answer was read (or it failed): its request
    # is over, so its deadline no longer applies. Without this the watchdog could shut a pooled
    # connection that another request took meanwhile.
    token = getattr(conn, "_crosscloud_deadline_token", None)
    if token is not None:
        conn._crosscloud_deadline_token = None
        WATCHDOG.release(token)
    _original_put_conn(self, conn)


def install() -> None:
    """Register every urllib3 request made inside `deadline` blocks with the watchdog.

    urllib3.connection.HTTPConnection is the base of requests' and botocore's connections
    (botocore.awsrequest.AWSConnection.request calls super().request), so this one hook covers
    the identity endpoint, STS, S3 and Blob; and a connection leaves the watch when it goes back
    to its pool (HTTPConnectionPool._put_conn, urllib3 is pinned). Idempotent.
    """
    urllib3.connection.HTTPConnection.request = _request  # type: ignore[method-assign]
    urllib3.connectionpool.HTTPConnectionPool._put_conn = _put_conn  # type: ignore[method-assign]
