"""Bounded exponential backoff for calls refused while new Azure role assignments propagate.

Role assignments can take minutes to take effect ("Role assignment changes are not being
detected", https://learn.microsoft.com/azure/role-based-access-control/troubleshooting), so on the
first `pulumi up` the deployer's fresh Website Contributor / Storage Blob Data Contributor
assignment is often not yet honoured. Retrying 401/403 for a bounded time keeps that run from
failing half-way; the bound keeps a truly missing role from hanging it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """How long to keep retrying, and how the pauses between attempts grow."""

    first_delay: float = 5.0
    max_delay: float = 60.0
    give_up_after: float = 15 * 60.0
    """Total seconds of retrying: above the ~10 minutes the RBAC troubleshooting page mentions."""
    factor: float = 2.0

    def __post_init__(self) -> None:
        if self.first_delay <= 0 or self.max_delay < self.first_delay or self.factor < 1:
            raise ValueError(f"nonsensical backoff {self}")
        if self.give_up_after < 0:
            raise ValueError("give_up_after must not be negative")


def retry(
    action: Callable[[], T],
    *,
    retry_if: Callable[[Exception], bool],
    give_up: Callable[[Exception], Exception],
    backoff: Backoff,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run `action` until it returns, retrying the errors `retry_if` accepts.

    Errors `retry_if` rejects propagate at once. When `backoff.give_up_after` seconds have gone,
    the exception `give_up(last_error)` is raised (chained to the last error), so the caller can
    say what is most likely missing.
    """
    deadline = clock() + backoff.give_up_after
    delay = backoff.first_delay
    while True:
        try:
            return action()
        except Exception as error:
            if not retry_if(error):
                raise
            remaining = deadline - clock()
            if remaining <= 0:
                raise give_up(error) from error
            sleep(min(delay, remaining))
            delay = min(delay * backoff.factor, backoff.max_delay)
