"""The front door's signing keys (crosscloud_fn/caller_keys.py): cached per process, refreshed
at most once per interval for an unknown `kid`, served while Entra's keys endpoint is down, 503
with nothing cached, and a bad answer is an outage, never a key set."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from localcloud.entra import FakeEntra
from tests.function.conftest import FunctionClient, MakeFunction, World
from tests.function.test_caller_auth import Clock, bearer, claims, refused

from crosscloud_fn import caller_auth, caller_keys  # isort: skip  (function_src is on sys.path)


@pytest.fixture
def client(make_function: MakeFunction) -> FunctionClient:
    return make_function("sami")


# ---- keys: cached, refreshed at most once per interval, served while Entra is down ----------


def test_warm_requests_fetch_no_keys(client: FunctionClient, world: World) -> None:
    for _ in range(5):
        assert client.call("whoami").status == 200
    assert world.entra.keys_requests == 1


def test_made_up_kids_cannot_hammer_the_keys_endpoint(client: FunctionClient, world: World) -> None:
    assert client.call("list").status == 200
    for n in range(20):
        refused(client, bearer(world.entra.sign(claims(world), kid=f"made-up-{n}")))
    assert world.entra.keys_requests == 1  # within the refresh interval: no new fetch


@pytest.fixture
def rotating() -> Iterator[FakeEntra]:
    with FakeEntra() as entra:
        yield entra


def test_a_rotated_in_key_is_fetched_once_the_interval_has_passed(rotating: FakeEntra) -> None:
    clock = Clock()
    keys = caller_keys.CallerKeys(
        f"{rotating.base_url}/{rotating.tenant_id}/discovery/v2.0/keys",
        refresh_seconds=300,
        clock=clock,
    )
    old = rotating.key_id
    assert keys.key(old) is not None and keys.fetches == 1
    new = rotating.rotate_signing_key()
    clock.now += 10
    assert keys.key(new) is None  # refreshed at the start; not again within 300 s
    assert keys.fetches == 1
    clock.now += 300
    assert keys.key(new) is not None  # one refresh, which finds the new key
    assert keys.key("made-up") is None and keys.fetches == 2
    assert keys.key(old) is not None  # still published, still accepted
    assert rotating.keys_requests == 2


def test_cached_keys_keep_serving_while_the_keys_endpoint_is_down(
    client: FunctionClient, world: World
) -> None:
    clock = Clock()
    settings = caller_auth.CallerSettings.from_env()
    keys = caller_keys.CallerKeys(settings.keys_url, clock=clock)
    caller_auth.replace(caller_auth.CallerGuard(settings, keys))
    assert client.call("list").status == 200
    world.entra.keys_outage_status = 503
    clock.now += caller_keys.MAX_KEY_SET_AGE + 1  # the set is due for its periodic refresh
    # A token the guard has not seen yet (a seen one is admitted without looking at the keys).
    answer = client.call("list", authorization=bearer(world.entra.sign(claims(world))))
    assert answer.status == 200, answer.body
    assert keys.fetches == 2 and world.entra.keys_requests == 2  # tried, failed, served cached
    # A kid nobody published is still refused while the endpoint is down (not a 503).
    refused(client, bearer(world.entra.sign(claims(world), kid="made-up")))


def test_nothing_cached_and_the_keys_endpoint_down_is_503_with_retry_after(
    client: FunctionClient, world: World
) -> None:
    world.entra.keys_outage_status = 503
    answer = client.call("list")
    assert answer.status == 503, answer.body
    assert answer.body["error"]["code"] == "caller_keys_unavailable"
    assert int(answer.headers["Retry-After"]) >= 1
    # Fails fast afterwards instead of calling the endpoint on every request.
    assert client.call("list").status == 503
    assert world.entra.keys_requests == 1
    world.entra.keys_outage_status = None


def test_a_keys_endpoint_that_never_answers_costs_one_timeout_then_503(
    make_function: MakeFunction,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        fn = make_function(
            "sami",
            AZURE_AUTHORITY_HOST=f"http://127.0.0.1:{port}",
            CROSSCLOUD_CALL_TIMEOUT_SECONDS="0.5",
        )
        answer = fn.call("list")
    assert answer.status == 503
    assert answer.body["error"]["code"] == "caller_keys_unavailable"


# ---- the key fetch itself: bounded, no redirects -----------------------------------------------


@pytest.fixture
def keys_server() -> Iterator[tuple[str, dict[str, Any]]]:
    """A loopback server answering the keys path as `answer` says (status, headers, body)."""
    import http.server
    import threading

    answer: dict[str, Any] = {"status": 200, "headers": {}, "body": b"{}"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(answer["status"])
            for name, value in answer["headers"].items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer["body"])))
            self.end_headers()
            self.wfile.write(answer["body"])

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/keys", answer
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (302, {"Location": "http://127.0.0.1:9/elsewhere"}, b""),  # never followed
        (200, {}, b"{" + b" " * (caller_keys.MAX_KEYS_BYTES + 10) + b"}"),  # too large
        (200, {}, b"not json"),
        (200, {}, b'{"keys": []}'),  # no signing key in it
        (500, {}, b"oops"),
    ],
    ids=["redirect", "too-large", "not-json", "no-keys", "error"],
)
def test_a_bad_keys_answer_is_an_outage_not_a_key_set(
    keys_server: tuple[str, dict[str, Any]], status: int, headers: dict[str, str], body: bytes
) -> None:
    url, answer = keys_server
    answer.update(status=status, headers=headers, body=body)
    keys = caller_keys.CallerKeys(url, fetch_timeout=2)
    with pytest.raises(caller_keys.KeysUnavailable):
        keys.key("any")
    assert keys.fetches == 1
