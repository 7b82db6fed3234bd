"""The deadline watchdog cuts only the connections of the call whose deadline passed
(crosscloud_fn/deadlines.py): a connection that went back to its pool may already carry another
request, from another thread, which must never be cut."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3
from crosscloud_fn import deadlines


class _Quick(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the pool reuses one connection

    def do_GET(self) -> None:
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def pool() -> Iterator[urllib3.HTTPConnectionPool]:
    deadlines.install()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Quick)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with urllib3.HTTPConnectionPool("127.0.0.1", server.server_address[1], maxsize=1) as pool:
        yield pool
    server.shutdown()
    server.server_close()


def test_a_connection_back_in_its_pool_is_not_cut_at_the_old_calls_deadline(pool) -> None:
    shut_before = deadlines.WATCHDOG.shut
    # The call reads its answer (the connection goes back to the pool), then outlives its
    # deadline doing something else: nothing of it is on the wire any more.
    with deadlines.deadline(time.monotonic() + 0.2):
        assert pool.request("GET", "/first", retries=False).status == 200
        time.sleep(0.6)  # the watchdog looks every 0.05 s
    assert deadlines.WATCHDOG.shut == shut_before
    # The pooled connection (the same socket: maxsize 1, keep-alive) still works for the next
    # request, which would fail if the watchdog had shut it.
    assert pool.num_connections == 1
    assert pool.request("GET", "/second", retries=False).status == 200
    assert pool.num_connections == 1
