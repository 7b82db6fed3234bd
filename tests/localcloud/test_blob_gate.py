"""The Blob RBAC gate survives an upstream that drops a TLS connection (ssl.SSLEOFError is an
OSError, not a ConnectionError) by trying one fresh connection, and gives up after a bounded
number of attempts."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from localcloud.blob_gate import UPSTREAM_ATTEMPTS, BlobGate
from localcloud.certs import TlsFiles, make_tls_files
from localcloud.https import LoopbackHttpsServer, QuietHandler
from localcloud.net import LOOPBACK

# The gate wants the issuer's keys; these requests carry no token, so any key does.
JWKS = {
    "keys": [
        RSAAlgorithm.to_jwk(
            rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(),
            as_dict=True,
        )
    ]
}


class _Ok(QuietHandler):
    def do_GET(self) -> None:
        self.send_body(200, b"from upstream", "text/plain")


class _Closer:
    """Accepts TCP connections and closes them mid-handshake: a TLS client then fails with
    ssl.SSLEOFError ("EOF occurred in violation of protocol")."""

    def __init__(self) -> None:
        self.sock = socket.create_server((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            # Read the ClientHello first: closing before it arrives can surface as a
            # ConnectionResetError instead; a FIN after it is an SSL-level EOF every time.
            conn.settimeout(5)
            with contextlib.suppress(OSError):
                conn.recv(65536)
            conn.close()

    def close(self) -> None:
        self.sock.close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def upstream(tls: TlsFiles) -> Iterator[LoopbackHttpsServer]:
    server = LoopbackHttpsServer(0, _Ok, tls)
    server.serve_in_thread("test-upstream")
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def closer() -> Iterator[_Closer]:
    closing = _Closer()
    yield closing
    closing.close()


def _get(gate: BlobGate, tls: TlsFiles) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(tls.ca_cert))
    connection = http.client.HTTPSConnection(LOOPBACK, gate.port, context=context, timeout=10)
    try:
        connection.request("GET", "/devstoreaccount1/container/blob")
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _upstream_connections(gate: BlobGate, ports: list[int]) -> list[int]:
    """Make the gate's n-th upstream connection go to ports[n] (the last one repeats)."""
    used: list[int] = []
    make = gate._upstream

    def next_connection() -> http.client.HTTPSConnection:
        connection = make()
        connection.port = ports[min(len(used), len(ports) - 1)]
        used.append(connection.port)
        return connection

    gate._upstream = next_connection  # type: ignore[method-assign]
    return used


def test_an_ssl_eof_from_upstream_is_retried_on_a_fresh_connection(
    tls: TlsFiles, upstream: LoopbackHttpsServer, closer: _Closer
) -> None:
    with BlobGate(f"https://{LOOPBACK}:{upstream.port}", tls, jwks=JWKS) as gate:
        used = _upstream_connections(gate, [closer.port, upstream.port])
        assert _get(gate, tls) == (200, b"from upstream")
    assert used == [closer.port, upstream.port]
    assert closer.accepted == 1


def test_an_upstream_that_keeps_failing_is_given_up_after_bounded_attempts(
    tls: TlsFiles, closer: _Closer
) -> None:
    with (
        BlobGate(f"https://{LOOPBACK}:{closer.port}", tls, jwks=JWKS) as gate,
        pytest.raises((http.client.HTTPException, OSError)),
    ):
        _get(gate, tls)
    assert closer.accepted == UPSTREAM_ATTEMPTS == 2
