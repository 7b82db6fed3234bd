"""A threaded HTTPS server on 127.0.0.1, shared by the function hosts and the fake ARM endpoint."""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from localcloud.net import LOOPBACK


class LoopbackHttpsServer(ThreadingHTTPServer):
    """TLS with the local CA's server certificate; the handshake runs in the request's thread, so
    a slow or plain-TCP client (e.g. `wait_for_port`'s probe) cannot stall `accept()`."""

    daemon_threads = True
    # socketserver's default backlog of 5 drops bursts of connects (the client retries after 1 s).
    request_queue_size = 128

    def __init__(
        self, port: int, handler: type[BaseHTTPRequestHandler], cert: Path, key: Path
    ) -> None:
        super().__init__((LOOPBACK, port), handler)
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(cert, key)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request = self._tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)

    def serve_in_thread(self, name: str) -> threading.Thread:
        # A short poll interval so shutdown() returns promptly.
        thread = threading.Thread(target=self.serve_forever, args=(0.05,), name=name, daemon=True)
        thread.start()
        return thread


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no per-request lines on stderr, and a JSON answer helper."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the client's delayed ACK would
    # add ~40 ms to every answer.
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
