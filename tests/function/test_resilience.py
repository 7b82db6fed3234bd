"""Slow, hung and failing dependencies (issue 10, items 1-3): every request answers within its
budget, outages are told apart from refusals, and a rejected AWS session heals itself.

Budgets and timeouts are app settings, set small here so that the tests stay fast.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from crosscloud_fn.dependencies import DESCRIPTIONS

from localcloud.moto_server import S3Refusal, StsRefusal
from tests.function.conftest import Answer, FunctionClient, MakeFunction, World
from tests.function.test_errors import assert_error

HUNG = 3600.0  # an endpoint that accepts the connection and never answers (ended at stop)


def limits(budget: float, call_timeout: float, cooldown: float = 0.2) -> dict[str, str]:
    return {
        "CROSSCLOUD_REQUEST_BUDGET_SECONDS": str(budget),
        "CROSSCLOUD_CALL_TIMEOUT_SECONDS": str(call_timeout),
        "CROSSCLOUD_OUTAGE_COOLDOWN_SECONDS": str(cooldown),
    }


def call_within(
    fn: FunctionClient, seconds: float, route: str = "read", **params: str
) -> tuple[Answer, float]:
    """Call in a thread and give up after `seconds`: before the fix these calls hung for minutes
    (azure-core's default read timeout is 300 s), and the suite must fail, not hang."""
    box: list[Answer] = []
    started = time.monotonic()
    params = params or ({"name": "hello.txt"} if route == "read" else {})
    thread = threading.Thread(target=lambda: box.append(fn.call(route, **params)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert box, f"/api/{route} did not answer within {seconds} s"
    return box[0], time.monotonic() - started


def drain(fn: FunctionClient) -> None:
    """Wait for work the function abandoned at a budget's end (it ends by its own timeouts), so
    that its late calls to the fakes are not counted by the next test."""
    fn.runtime._pool.shutdown(wait=True)


def assert_no_internal_address(answer: Answer, world: World) -> None:
    identity = urlsplit(world.host_env["IDENTITY_ENDPOINT"])
    for secret in (identity.netloc, str(identity.port), world.host_env["IDENTITY_ENDPOINT"]):
        assert secret not in answer.text
    assert "Traceback" not in answer.text


# ---- 1. every call bounded, one budget per request ----------------------------------------------


def test_a_hung_identity_endpoint_is_an_outage_answered_in_time(
    make_function: MakeFunction, world: World
) -> None:
    world.entra.latency = HUNG
    fn = make_function("sami", **limits(budget=3, call_timeout=0.3))
    answer, _ = call_within(fn, 10)

    # Two attempts of 0.3 s at the identity endpoint, then 503: well inside the 3 s budget.
    error = assert_error(answer, 503, "identity_unavailable")
    assert "retry later" in error["hint"].lower()
    assert "permission" in error["hint"]  # "... this is not a permission problem"
    assert_no_internal_address(answer, world)
    drain(fn)


@pytest.mark.parametrize("dependency", ["identity", "sts", "s3", "blob"])
def test_the_budget_ends_a_request_with_504_naming_the_slow_dependency(
    make_function: MakeFunction, world: World, dependency: str
) -> None:
    # Per-call timeouts longer than the budget: the budget is what ends the request.
    fn = make_function("sami", **limits(budget=1, call_timeout=2))
    if dependency == "s3":
        assert fn.call("read", name="hello.txt").status == 200  # credentials in hand first
    slow: dict[str, Callable[[], None]] = {
        "identity": lambda: setattr(world.entra, "latency", HUNG),
        "sts": lambda: setattr(world.aws, "sts_latency", 2.5),
        "s3": lambda: setattr(world.aws, "s3_latency", 2.5),
        "blob": lambda: setattr(world.gate, "latency", 2.5),
    }
    slow[dependency]()
    answer, _ = call_within(fn, 10)

    # 504, not the 503 of a call timeout (2 s) nor the dependency's late answer: the budget
    # (1 s) ended the request, while that dependency was the one still awaited.
    error = assert_error(answer, 504, "timeout")
    assert DESCRIPTIONS[dependency] in error["message"]
    assert DESCRIPTIONS[dependency] in error["hint"]
    assert answer.headers["Retry-After"].isdigit()
    assert_no_internal_address(answer, world)
    world.restore()
    drain(fn)


def test_a_stuck_dependency_does_not_delay_requests_after_it_recovers(
    make_function: MakeFunction, world: World
) -> None:
    # STS hangs during a cold start: every request's exchange is stuck for 2 x 4 s.
    fn = make_function("sami", **limits(budget=1.5, call_timeout=4))
    world.aws.sts_latency = 20.0
    answers: list[Answer] = []
    threads = [
        threading.Thread(target=lambda: answers.append(fn.call("read", name="hello.txt")))
        for _ in range(12)  # more than the old pool's 8 workers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert [a.status for a in answers] == [504] * 12

    world.aws.sts_latency = 0.0  # STS recovers; the calls made during the hang stay stuck
    answer, _ = call_within(fn, 10)
    # A 200 within its 1.5 s budget: not queued behind stuck workers, nor behind the stuck
    # exchange (which its budget cut off without starting a cooldown).
    assert answer.status == 200, answer.body
    drain(fn)


# ---- 2. an outage is not a refusal --------------------------------------------------------------


@pytest.mark.parametrize(
    "refusal",
    [
        StsRefusal("ServiceUnavailable", "Service is unavailable", 503),
        StsRefusal("Throttling", "Rate exceeded", 400),
        StsRefusal("IDPCommunicationError", "Couldn't reach the identity provider", 400),
    ],
    ids=lambda r: r.code,
)
def test_sts_outages_are_sts_unavailable_with_backoff(
    make_function: MakeFunction, world: World, refusal: StsRefusal
) -> None:
    world.aws.sts_guard = lambda params: refusal
    fn = make_function("sami", **limits(budget=5, call_timeout=1, cooldown=30))
    error = assert_error(fn.call("read", name="hello.txt"), 503, "sts_unavailable")
    assert refusal.code in error["message"]
    assert "retry later" in error["hint"].lower()
    assert "trust policy" not in error["hint"]
    calls = world.aws.web_identity_calls
    assert 1 <= calls <= 2  # one retry at most, with backoff (was 4 without)

    # During the cooldown, further requests do not call STS at all.
    assert_error(fn.call("list"), 503, "sts_unavailable")
    assert world.aws.web_identity_calls == calls


def test_entra_down_is_identity_unavailable_without_the_endpoint_address(
    make_function: MakeFunction, world: World
) -> None:
    world.entra.outage_status = 503
    fn = make_function("uami", **limits(budget=5, call_timeout=1))
    answer, _ = call_within(fn, 10, "whoami")
    error = assert_error(answer, 503, "identity_unavailable")
    assert "HTTP 503" in error["message"] or "not a token response" in error["message"]
    assert_no_internal_address(answer, world)


def test_the_outage_detail_goes_to_the_log_only(
    make_function: MakeFunction, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.entra.latency = HUNG
    fn = make_function("sami", **limits(budget=3, call_timeout=0.3))
    answer, _ = call_within(fn, 10, "whoami")
    assert_error(answer, 503, "identity_unavailable")
    logged = [r.getMessage() for r in caplog.records if "identity unavailable" in r.getMessage()]
    assert logged and any("Timeout" in line for line in logged)


def test_a_refusal_keeps_its_precise_hint_and_status(
    make_function: MakeFunction, world: World
) -> None:
    world.guard.subjects.clear()  # STS answers AccessDenied: a refusal, not an outage
    fn = make_function("sami", **limits(budget=5, call_timeout=1))
    error = assert_error(fn.call("list"), 502, "sts_refused")
    assert "trust policy" in error["hint"]


# ---- 3. a rejected AWS session heals itself -----------------------------------------------------


def test_revoked_sessions_heal_with_one_refresh(make_function: MakeFunction, world: World) -> None:
    fn = make_function("sami")
    assert fn.call("read", name="hello.txt").status == 200
    assert world.aws.web_identity_calls == 1

    # docs/troubleshooting.md advises "Revoke active sessions" after a leak: S3 then denies the
    # old session explicitly (AccessDenied); a new one from STS is allowed.
    world.aws.revoke_sessions()
    answer = fn.call("read", name="hello.txt")
    assert answer.status == 200, answer.body
    assert world.aws.web_identity_calls == 2
    assert [c.status for c in world.aws.call_log("s3")][-2:] == [403, None]


@pytest.mark.parametrize(
    "code", ["ExpiredToken", "InvalidToken", "InvalidAccessKeyId", "RequestTimeTooSkewed"]
)
def test_a_rejected_session_is_refreshed_once_and_retried(
    make_function: MakeFunction, world: World, code: str
) -> None:
    fn = make_function("sami")
    assert fn.call("read", name="hello.txt").status == 200
    rejected: set[str] = set()

    def reject_the_first_session(access_key: str, action: str) -> S3Refusal | None:
        if not rejected or access_key in rejected:
            rejected.add(access_key)
            return S3Refusal(code, "The provided token has expired.", 400)
        return None

    world.aws.s3_guard = reject_the_first_session
    answer = fn.call("read", name="hello.txt")
    assert answer.status == 200, answer.body
    assert world.aws.web_identity_calls == 2
    assert len(rejected) == 1


def test_a_second_rejection_has_its_own_hint(make_function: MakeFunction, world: World) -> None:
    fn = make_function("sami")
    assert fn.call("read", name="hello.txt").status == 200
    world.aws.s3_guard = lambda key, action: S3Refusal("RequestTimeTooSkewed", "Skewed", 403)
    error = assert_error(fn.call("read", name="hello.txt"), 502, "aws_credentials_rejected")
    assert "clock" in error["hint"]
    assert world.aws.web_identity_calls == 2  # one refresh, not a loop


def test_a_policy_denial_costs_one_refresh_per_session_only(
    make_function: MakeFunction, world: World
) -> None:
    fn = make_function("sami")
    assert fn.call("read", name="hello.txt").status == 200
    world.aws.s3_guard = lambda key, action: S3Refusal("AccessDenied", "Access Denied", 403)
    for _ in range(3):
        error = assert_error(fn.call("read", name="hello.txt"), 502, "s3_access_denied")
    assert "not a revoked session" in error["hint"]
    assert world.aws.web_identity_calls == 2
