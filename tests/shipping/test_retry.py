"""The bounded backoff both providers use while role assignments propagate."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shipping.retry import Backoff, retry


class Refused(Exception):
    pass


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def flaky(failures: int, error: Exception) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def action() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise error
        return "done"

    return calls, action


def run(action: Callable[[], str], backoff: Backoff, fake: FakeTime) -> str:
    return retry(
        action,
        retry_if=lambda e: isinstance(e, Refused),
        give_up=lambda e: RuntimeError(f"gave up after {e}"),
        backoff=backoff,
        sleep=fake.sleep,
        clock=fake.clock,
    )


def test_retries_until_success_with_growing_capped_delays() -> None:
    fake = FakeTime()
    calls, action = flaky(5, Refused("403"))
    backoff = Backoff(first_delay=1, max_delay=4, give_up_after=100, factor=2)
    assert run(action, backoff, fake) == "done"
    assert len(calls) == 6
    assert fake.sleeps == [1, 2, 4, 4, 4]


def test_gives_up_after_the_bound_with_the_callers_error() -> None:
    fake = FakeTime()
    calls, action = flaky(10**6, Refused("403"))
    backoff = Backoff(first_delay=1, max_delay=8, give_up_after=20, factor=2)
    with pytest.raises(RuntimeError, match="gave up after 403") as failure:
        run(action, backoff, fake)
    assert isinstance(failure.value.__cause__, Refused)
    assert sum(fake.sleeps) == 20  # the last pause is cut to the deadline, not beyond
    assert len(calls) == len(fake.sleeps) + 1


def test_other_errors_are_not_retried() -> None:
    fake = FakeTime()
    calls, action = flaky(1, ValueError("bad input"))
    with pytest.raises(ValueError, match="bad input"):
        run(action, Backoff(), fake)
    assert len(calls) == 1 and fake.sleeps == []


def test_nonsensical_backoffs_are_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(first_delay=0)
    with pytest.raises(ValueError):
        Backoff(first_delay=10, max_delay=5)
