"""The loopback HTTP(S) plumbing every fake shares: a threaded server on 127.0.0.1 (TLS with the
local CA's server certificate when given `TlsFiles`), a quiet keep-alive handler, and
`LoopbackService`, the start/stop/context-manager lifecycle of a fake that serves one server from
a daemon thread."""

from __future__ import annotations

import json
import socket
import socketserver
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

from localcloud.certs import TlsFiles
from localcloud.net import LOOPBACK

POLL_INTERVAL = 0.05
"""How often `serve_forever` checks for `shutdown()`: short, so stopping a fake is prompt."""


def server_context(tls: TlsFiles) -> ssl.SSLContext:
    """A server-side TLS context with the loopback certificate the local CA signed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.server_cert, tls.server_key)
    return context


def serve_in_thread(server: socketserver.BaseServer, name: str) -> threading.Thread:
    """Run `server.serve_forever` in a daemon thread, polling for shutdown every 50 ms."""
    thread = threading.Thread(
        target=server.serve_forever, args=(POLL_INTERVAL,), name=name, daemon=True
    )
    thread.start()
    return thread


class LoopbackHttpsServer(ThreadingHTTPServer):
    """A threaded server on 127.0.0.1: HTTPS with `tls`, plain HTTP without.

    The TLS handshake runs in the request's thread, so a slow or plain-TCP client (e.g.
    `wait_for_port`'s probe) cannot stall `accept()`. Every accepted connection has Nagle off,
    whatever the handler says: headers and body go out in separate writes, and with Nagle on the
    client's delayed ACK would add ~40 ms to every answer.
    """

    daemon_threads = True
    # socketserver's default backlog of 5 drops bursts of connects (the client retries after 1 s).
    request_queue_size = 128

    def __init__(
        self, port: int, handler: type[BaseHTTPRequestHandler], tls: TlsFiles | None = None
    ) -> None:
        super().__init__((LOOPBACK, port), handler)
        self._tls = server_context(tls) if tls else None

    @property
    def port(self) -> int:
        return self.server_address[1]

    def get_request(self) -> tuple[socket.socket, Any]:
        request, client_address = super().get_request()
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return request, client_address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self._tls:
            try:
                request = self._tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def serve_in_thread(self, name: str) -> threading.Thread:
        return serve_in_thread(self, name)


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no per-request lines on stderr, and a JSON answer helper."""

    protocol_version = "HTTP/1.1"
    # Also set by LoopbackHttpsServer for every connection; kept for use with other servers.
    disable_nagle_algorithm = True

    def send_body(
        self,
        status: int,
        body: bytes,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, body: dict[str, Any]) -> None:
        self.send_body(status, json.dumps(body).encode(), "application/json; charset=utf-8")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackService:
    """Lifecycle of a fake that serves one server from a daemon thread.

    A subclass names its thread (`_thread_name`) and builds its server in `_make_server()`
    (usually `LoopbackHttpsServer(port, self._handler(), self.tls)`); this class owns `start()`
    (build, serve in a thread), `stop()` (shutdown, close the listening socket, join; safe to call
    twice or before `start()`) and the context manager. The server listens once `_make_server()`
    returns, so `start()` needs no wait for the port.
    """

    _thread_name: ClassVar[str] = "loopback-service"
    _server: socketserver.BaseServer | None = None
    _thread: threading.Thread | None = None

    def _make_server(self) -> socketserver.BaseServer:
        raise NotImplementedError

    def start(self) -> Self:
        self._server = self._make_server()
        self._thread = serve_in_thread(self._server, self._thread_name)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
