"""Throttling, slow drips, bursts and malformed answers (issue 20): what happened is asserted -
which status and code, how many calls reached each fake, which connection was cut off - never
how long it took (the figures are in `make bench`, bench/resilience_bench.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from urllib.parse import urlsplit

import pytest
from crosscloud_fn import deadlines
from crosscloud_fn.settings import SettingsError, check_token_endpoints

from localcloud.faults import Canned, CannedServer, DripProxy, html_page, sts_credentials_xml
from localcloud.moto_server import S3Refusal
from tests.function.conftest import Answer, FunctionClient, MakeFunction, World
from tests.function.test_errors import assert_error
from tests.function.test_resilience import assert_no_internal_address, call_within, drain, limits


@pytest.fixture
def canned_http() -> Iterator[CannedServer]:
    with CannedServer() as server:
        yield server


@pytest.fixture
def canned_https(world: World) -> Iterator[CannedServer]:
    with CannedServer(world.tls) as server:
        yield server


def identity_at(canned: CannedServer) -> dict[str, str]:
    return {"IDENTITY_ENDPOINT": f"{canned.url}/msi/token"}


def token_answer(world: World, *, expires_on: int | None = None, token: str = "") -> Canned:
    """What App Service's identity endpoint answers: a real token from the fake Entra."""
    issued, expiry = world.entra.issue_token(world.identities["sami"], world.audience)
    body = {
        "access_token": token or issued,
        "expires_on": str(expiry if expires_on is None else expires_on),
        "resource": world.audience,
        "token_type": "Bearer",
    }
    return Canned(200, json.dumps(body).encode(), content_type="application/json")


def throttled(retry_after: int) -> Canned:
    body = json.dumps({"statusCode": 429, "message": "Too many requests"}).encode()
    return Canned(429, body, {"Retry-After": str(retry_after)}, "application/json")


def in_parallel(fn: FunctionClient, n: int, route: str = "read") -> list[Answer]:
    params = {"name": "hello.txt"} if route == "read" else {}
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: fn.call(route, **params), range(n)))


# ---- the identity endpoint throttles -------------------------------------------------------------


def test_a_throttled_identity_endpoint_is_not_slept_on_and_not_asked_again(
    make_function: MakeFunction, world: World, canned_http: CannedServer
) -> None:
    canned_http.answer = throttled(60)
    # A budget far shorter than the 60 s asked for: sleeping on it would end in 504.
    fn = make_function("sami", **identity_at(canned_http), **limits(budget=4, call_timeout=1))
    answer, _ = call_within(fn, 10, "whoami")

    error = assert_error(answer, 503, "identity_unavailable")
    assert "429" in error["message"]
    assert answer.headers["Retry-After"] == "30"  # the upstream's 60 s, capped
    assert canned_http.requests == 1  # no retry inside the request

    # Cold requests during the advice: all 503 at once, and the endpoint is not asked again.
    answers = in_parallel(fn, 8, "whoami")
    assert {a.status for a in answers} == {503}
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers)
    assert canned_http.requests == 1
    assert_no_internal_address(answers[0], world)


def test_after_the_advice_the_first_request_asks_once(
    make_function: MakeFunction, world: World, canned_http: CannedServer
) -> None:
    canned_http.answer = throttled(1)
    fn = make_function("sami", **identity_at(canned_http), **limits(budget=4, call_timeout=1))
    assert fn.call("whoami").status == 503
    assert canned_http.requests == 1

    canned_http.answer = token_answer(world)  # the endpoint recovers
    time.sleep(1.2)  # the 1 s it asked for: no test of speed, just past the advice
    answers = in_parallel(fn, 8, "whoami")
    assert {a.status for a in answers} == {200}
    assert canned_http.requests == 2  # one request for all eight (single flight)


def test_a_token_that_is_not_a_jwt_is_identity_unavailable_not_a_crash(
    make_function: MakeFunction, world: World, canned_http: CannedServer
) -> None:
    canned_http.answer = token_answer(world, token="opaque-token-value")
    fn = make_function("sami", **identity_at(canned_http))
    error = assert_error(fn.call("whoami"), 503, "identity_unavailable")
    assert "not a JWT" in error["message"]


def test_an_already_expired_token_names_the_clock(
    make_function: MakeFunction, world: World, canned_http: CannedServer
) -> None:
    canned_http.answer = token_answer(world, expires_on=int(time.time()) - 600)
    fn = make_function("sami", **identity_at(canned_http))
    answer = fn.call("read", name="hello.txt")
    error = assert_error(answer, 503, "identity_unavailable")
    assert "already expired" in error["message"] and "clock" in error["message"]
    assert world.aws.web_identity_calls == 0  # never sent to STS to be refused there
    assert "Retry-After" in answer.headers


# ---- malformed answers from STS and Blob ---------------------------------------------------------


@pytest.mark.parametrize(
    "answer, reason",
    [
        (Canned(200, html_page("Proxy error")), "no credentials"),
        (Canned(200, sts_credentials_xml("", with_credentials=False), {}, "text/xml"), "no cred"),
        (
            Canned(200, sts_credentials_xml("2001-01-01T00:00:00Z"), {}, "text/xml"),
            "already expired",
        ),
    ],
    ids=["html", "no-credentials", "expired-credentials"],
)
def test_a_malformed_sts_answer_is_sts_unavailable(
    make_function: MakeFunction,
    world: World,
    canned_https: CannedServer,
    answer: Canned,
    reason: str,
) -> None:
    canned_https.answer = answer
    fn = make_function("sami", AWS_ENDPOINT_URL_STS=canned_https.url, **limits(5, 1, cooldown=30))
    result = fn.call("read", name="hello.txt")
    error = assert_error(result, 503, "sts_unavailable")
    assert reason in error["message"]
    assert "trust policy" not in error["hint"]
    assert result.headers["Retry-After"].isdigit()
    asked = canned_https.requests
    assert_error(fn.call("read", name="hello.txt"), 503, "sts_unavailable")
    assert canned_https.requests == asked  # cooling down, as after an outage


@pytest.mark.parametrize("route", ["read", "list"])
def test_an_html_page_from_blob_storage_is_blob_unavailable(
    make_function: MakeFunction, world: World, canned_https: CannedServer, route: str
) -> None:
    canned_https.answer = Canned(200, html_page("Sign in"))
    fn = make_function("sami", CROSSCLOUD_BLOB_ACCOUNT_URL=canned_https.url)
    params = {"name": "hello.txt"} if route == "read" else {}
    answer = fn.call(route, **params)
    error = assert_error(answer, 503, "blob_unavailable")
    assert "Retry-After" in answer.headers
    assert "permission" in error["hint"]  # "... this is not a permission problem"


def test_a_blob_overwritten_between_ranged_gets_is_read_again_from_the_start(
    make_function: MakeFunction, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.storage.blob import ContainerClient

    from tests.function.conftest import BUCKET, CONTAINER, _StaticToken

    first = b"a" * (200 * 1024)  # more than the first 64 KiB GET: two ranged GETs at least
    second = b"b" * (150 * 1024)
    expires_on = int(time.time()) + 3600
    writer = ContainerClient(
        world.gate.endpoint,
        CONTAINER,
        credential=_StaticToken(world.deployer_token, expires_on),
        connection_verify=str(world.tls_ca),
    )
    writer.upload_blob("changing.bin", first, overwrite=True)
    world.aws.client("s3").put_object(Bucket=BUCKET, Key="changing.bin", Body=b"s3")
    fn = make_function("sami")
    assert fn.call("read", name="hello.txt").status == 200
    container = fn.runtime.blob.container
    download = container.download_blob
    overwritten: list[int] = []

    def download_and_overwrite_once(*args: object, **kwargs: object) -> object:
        downloader = download(*args, **kwargs)
        if not overwritten:  # after the first GET, before the others
            writer.upload_blob("changing.bin", second, overwrite=True)
            overwritten.append(1)
        return downloader

    monkeypatch.setattr(container, "download_blob", download_and_overwrite_once)
    world.reset_counts()
    answer = fn.call("read", name="changing.bin")
    writer.close()
    assert answer.status == 200, answer.body

    assert overwritten == [1]
    azure = answer.body["azure"]
    assert azure["size"] == len(second)  # the whole new version, not a mix of both
    assert azure["base64"] is None and azure["text"] == second.decode()
    gets = [r for r in world.gate.request_log() if r.method == "GET"]
    assert len(gets) >= 3  # first GET, the refused conditional GET, then the new read


SLOW_READ = 3.0
"""The call timeout of the drip tests: each read may wait 3 s for a byte that comes every 0.2 s.
A shorter one (1 s) let a busy CI machine stall the proxy long enough for a read timeout to end
the call first, which proves nothing about the deadline."""


# ---- a dripping S3 ------------------------------------------------------------------------------


def test_a_dripping_s3_is_cut_off_at_the_call_deadline_and_frees_its_thread(
    make_function: MakeFunction, world: World
) -> None:
    with DripProxy(world.aws.port, world.tls) as proxy:
        fn = make_function(
            "sami", AWS_ENDPOINT_URL_S3=proxy.url(), **limits(budget=20, call_timeout=SLOW_READ)
        )
        assert fn.call("read", name="hello.txt").status == 200  # credentials in hand
        proxy.drip = 0.2  # one byte every 0.2 s: far from a 3 s pause, so no read timeout
        shut_before = deadlines.WATCHDOG.shut
        answer, _ = call_within(fn, 30)

        # The call deadline (2 x 3 + 1 s) cut it off, well before the 20 s budget: a 503
        # naming S3, not a 504, and the connection was shut by the watchdog.
        error = assert_error(answer, 503, "s3_unavailable")
        assert "cut off" in error["message"]
        assert deadlines.WATCHDOG.shut > shut_before
        finished = threading.Event()
        threading.Thread(target=lambda: (drain(fn), finished.set()), daemon=True).start()
        assert finished.wait(10), "a worker thread is still held by the dripping connection"

        proxy.drip = 0.0  # S3 is healthy again
        fn = make_function(
            "sami", AWS_ENDPOINT_URL_S3=proxy.url(), **limits(budget=8, call_timeout=1)
        )
        assert fn.call("read", name="hello.txt").status == 200


@pytest.mark.parametrize("dependency", ["identity", "sts", "blob"])
def test_every_dripping_dependency_is_cut_off_at_its_call_deadline(
    make_function: MakeFunction, world: World, dependency: str
) -> None:
    """The same for the other three: each byte well within the 3 s read timeout, so only the
    call's deadline (2 x 3 + 1 s; the Blob read, token included, twice that) ends it - a 503
    naming that dependency, before the 20 s budget's 504."""
    port, tls = {
        "identity": (world.entra.port, None),  # App Service's endpoint: plain http
        "sts": (world.aws.port, world.tls),
        "blob": (world.gate.port, world.tls),
    }[dependency]
    with DripProxy(port, tls) as proxy:
        proxy.drip = 0.2
        settings = {
            "identity": {
                "IDENTITY_ENDPOINT": proxy.url("http")
                + urlsplit(world.host_env["IDENTITY_ENDPOINT"]).path
            },
            "sts": {"AWS_ENDPOINT_URL_STS": proxy.url()},
            "blob": {
                "CROSSCLOUD_BLOB_ACCOUNT_URL": proxy.url() + urlsplit(world.gate.endpoint).path
            },
        }[dependency]
        fn = make_function("sami", **settings, **limits(budget=20, call_timeout=SLOW_READ))
        answer, _ = call_within(fn, 30)
        error = assert_error(answer, 503, f"{dependency}_unavailable")
        assert "cut off" in error["message"]
        finished = threading.Event()
        threading.Thread(target=lambda: (drain(fn), finished.set()), daemon=True).start()
        assert finished.wait(10), "a worker thread is still held by the dripping connection"


# ---- bursts and rejections ----------------------------------------------------------------------


def test_a_cold_burst_shares_one_token_request_and_one_sts_exchange(
    make_function: MakeFunction, world: World
) -> None:
    world.aws.sts_latency = world.entra.latency = 0.3  # long enough for the burst to overlap
    fn = make_function("sami")
    answers = in_parallel(fn, 30)
    assert {a.status for a in answers} == {200}
    assert world.entra.requests_for(world.audience) == 1
    assert world.aws.web_identity_calls == 1


def test_parallel_access_denied_refreshes_once_per_set_of_credentials(
    make_function: MakeFunction, world: World
) -> None:
    fn = make_function("sami")
    assert fn.call("read", name="hello.txt").status == 200
    world.aws.s3_guard = lambda key, action: S3Refusal("AccessDenied", "Access Denied", 403)
    answers = in_parallel(fn, 50)
    assert {a.body["error"]["code"] for a in answers} == {"s3_access_denied"}
    assert world.aws.web_identity_calls == 2  # the first set, and one refresh


def test_a_persistent_clock_skew_cools_down_instead_of_exchanging_per_request(
    make_function: MakeFunction, world: World
) -> None:
    fn = make_function("sami")
    world.aws.s3_guard = lambda key, action: S3Refusal("RequestTimeTooSkewed", "Skewed", 403)
    for _ in range(10):
        error = assert_error(fn.call("read", name="hello.txt"), 502, "aws_credentials_rejected")
    assert "clock" in error["hint"]
    assert world.aws.web_identity_calls == 2  # the first set, one refresh, then no more


def test_a_persistent_expired_token_names_the_clock(
    make_function: MakeFunction, world: World
) -> None:
    fn = make_function("sami")
    world.aws.s3_guard = lambda key, action: S3Refusal("ExpiredToken", "The token expired", 400)
    for _ in range(3):
        error = assert_error(fn.call("read", name="hello.txt"), 502, "aws_credentials_rejected")
    assert "clock" in error["hint"] and "trust" in error["hint"]  # "nothing in the trust setup"
    assert world.aws.web_identity_calls == 2


# ---- endpoints that receive tokens must be https ------------------------------------------------


@pytest.mark.parametrize(
    "setting, value",
    [
        ("AWS_ENDPOINT_URL_STS", "http://sts.example.com"),
        ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000"),
        ("AWS_ENDPOINT_URL", "http://localstack:4566"),
        ("IDENTITY_ENDPOINT", "http://10.0.0.5:8081/msi/token"),
    ],
)
def test_an_http_endpoint_that_receives_tokens_is_refused_naming_the_setting(
    make_function: MakeFunction, world: World, setting: str, value: str
) -> None:
    fn = make_function("sami", **{setting: value})
    error = assert_error(fn.call("whoami"), 500, "misconfigured")
    assert setting in error["message"]
    assert world.entra.token_requests == 0 and world.aws.call_log() == []


def test_the_identity_endpoint_may_be_http_on_a_host_local_address_only() -> None:
    for local in (
        "http://127.0.0.1:41741/MSI/token/",  # App Service on Windows
        "http://localhost:8081/msi/token",
        "http://169.254.130.3:8081/msi/token",  # link-local, as on Linux App Service
        "https://identity.example/msi/token",
    ):
        check_token_endpoints({"IDENTITY_ENDPOINT": local})
    for remote in ("http://127.0.0.1.example.com/msi/token", "http://192.168.1.5:8081/msi"):
        with pytest.raises(SettingsError, match="IDENTITY_ENDPOINT"):
            check_token_endpoints({"IDENTITY_ENDPOINT": remote})


def test_sts_finding_the_token_expired_names_the_clock_not_the_tenant(
    make_function: MakeFunction, world: World
) -> None:
    from localcloud.moto_server import StsRefusal

    world.aws.sts_guard = lambda params: StsRefusal(
        "ExpiredTokenException", "Token expired: current date/time is past", 400
    )
    fn = make_function("sami")
    error = assert_error(fn.call("read", name="hello.txt"), 502, "sts_refused")
    assert "clock" in error["hint"] and "expired" in error["hint"]
    assert "trust policy must" not in error["hint"]


def test_a_deadline_cuts_off_a_peer_that_drips_faster_than_the_read_timeout() -> None:
    """The mechanism itself, on plain HTTP through urllib3 (what requests and botocore use): each
    byte comes well within the 1 s read timeout, so only the deadline can end the call."""
    import urllib3

    with CannedServer(answer=Canned(200, b"x" * 200)) as canned, DripProxy(canned.port) as proxy:
        proxy.drip = 0.05  # ~15 s for the whole answer
        pool = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1, read=1), retries=False)
        shut_before = deadlines.WATCHDOG.shut
        cut = (deadlines.CutOff, urllib3.exceptions.HTTPError)
        with pytest.raises(cut), deadlines.deadline(time.monotonic() + 0.5):
            pool.request("GET", f"{proxy.url('http')}/")
        assert deadlines.WATCHDOG.shut == shut_before + 1
        # Nothing is sent after the deadline (urllib3 wraps the refusal as a ProtocolError).
        refused = urllib3.exceptions.ProtocolError
        with pytest.raises(refused) as late, deadlines.deadline(time.monotonic() - 1):
            pool.request("GET", f"{proxy.url('http')}/")
        assert isinstance(late.value.args[1], deadlines.DeadlineExceeded)
        pool.clear()


def test_single_flight_shares_one_call_and_hedges_a_stuck_one_once() -> None:
    """Ten callers, a first call stuck on a bad connection: after `hedge` one caller (one only)
    makes a second call, whose result answers everyone; the stuck call's late failure changes
    nothing. Deterministic: the stuck call ends only when the test releases it."""
    from crosscloud_fn.dependencies import SingleFlight

    flight = SingleFlight("sts", hedge=0.2)
    release = threading.Event()
    started: list[int] = []
    lock = threading.Lock()

    def work() -> str:
        with lock:
            started.append(1)
            first = len(started) == 1
        if first:
            release.wait(10)
            raise ConnectionError("the stuck connection finally broke")
        return "credentials"

    def caller() -> object:
        try:
            return flight.run("exchange", work, wait=10)
        except ConnectionError as exc:
            return exc

    with ThreadPoolExecutor(10) as pool:
        futures = [pool.submit(caller) for _ in range(10)]
        finished = as_completed(futures, timeout=10)
        answered = [next(finished).result() for _ in range(9)]  # all but the stuck leader
        release.set()
        (leader,) = [f.result() for f in futures if isinstance(f.result(), ConnectionError)]
    assert answered == ["credentials"] * 9
    assert isinstance(leader, ConnectionError)  # the leader's own request gets its own failure
    assert len(started) == 2 and flight.calls == 2
