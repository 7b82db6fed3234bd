"""Warm invocations reuse the token and the STS credentials; both refresh before they expire;
the two clouds are read at the same time. Everything is counted at the fakes."""

from __future__ import annotations

import datetime as dt

from localcloud.entra import STORAGE_RESOURCE
from tests.function.conftest import MakeFunction, World

WARM_REQUESTS = 50


class FakeClock:
    """botocore's "now" for the refresh decision, moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, minutes: float) -> None:
        self.offset += dt.timedelta(minutes=minutes)


def counts(world: World) -> tuple[int, int, int]:
    return (
        world.entra.requests_for(world.audience),
        world.entra.requests_for(STORAGE_RESOURCE),
        world.aws.web_identity_calls,
    )


def test_fifty_warm_requests_cost_no_token_and_no_sts_call(
    make_function: MakeFunction, world: World
) -> None:
    fn = make_function("uami")
    assert fn.call("read", name="hello.txt").status == 200  # cold: one token per audience, one STS
    assert counts(world) == (1, 1, 1)

    routes = [("read", {"name": "hello.txt"}), ("list", {}), ("whoami", {})]
    for i in range(WARM_REQUESTS):
        route, params = routes[i % len(routes)]
        assert fn.call(route, **params).status == 200

    assert counts(world) == (1, 1, 1)
    assert world.entra.token_requests == 2
    # ...while every request really went to the stores (nothing answered from a cache).
    reads = len(range(0, WARM_REQUESTS, 3)) + 1
    lists = len(range(1, WARM_REQUESTS, 3))
    assert world.aws.calls("s3") == reads + lists
    assert world.gate.requests == reads + lists


def test_aws_credentials_refresh_before_they_expire(
    make_function: MakeFunction, world: World
) -> None:
    clock = FakeClock()
    fn = make_function("sami", clock=clock)
    assert fn.call("read", name="hello.txt").status == 200
    assert world.aws.web_identity_calls == 1  # credentials valid for 60 minutes

    clock.advance(44)  # 16 minutes left: outside botocore's 15-minute refresh window
    assert fn.call("read", name="hello.txt").status == 200
    assert world.aws.web_identity_calls == 1

    clock.advance(2)  # 14 minutes left: refreshed now, while the old ones still work
    assert fn.call("read", name="hello.txt").status == 200
    assert world.aws.web_identity_calls == 2
    # The exchange reused the cached Entra token (valid for a day), so Entra was not asked.
    assert world.entra.requests_for(world.audience) == 1
    # (Moving further is pointless: moto dates the new credentials by the real clock.)


def test_an_expiring_entra_token_is_renewed_before_the_exchange(
    make_function: MakeFunction, world: World
) -> None:
    # Tokens that live 4 minutes are inside MSAL's 5-minute "treat as expired" margin, so the
    # credential must ask Entra again instead of sending STS a token about to expire.
    world.entra.token_lifetime = 240
    fn = make_function("sami")
    assert fn.call("whoami").status == 200  # the federation token is now in the cache
    assert world.entra.requests_for(world.audience) == 1

    assert fn.call("read", name="hello.txt").status == 200  # first use of AWS: the exchange
    assert world.aws.web_identity_calls == 1
    assert world.entra.requests_for(world.audience) == 2


def test_both_clouds_are_read_at_the_same_time(make_function: MakeFunction, world: World) -> None:
    fn = make_function("sami")
    assert fn.call("read", name="hello.txt").status == 200  # cold start out of the way
    held = 0.5
    world.gate.latency = world.aws.s3_latency = held
    world.reset_counts()

    assert fn.call("read", name="hello.txt").status == 200

    (blob_request,) = world.gate.request_log()
    (s3_request,) = world.aws.call_log("s3")
    # Each request reached its fake while the other was still held there (`at` is the arrival,
    # before the latency): read one after the other, the second would arrive after the first
    # was answered.
    assert s3_request.at < blob_request.at + held
    assert blob_request.at < s3_request.at + held
