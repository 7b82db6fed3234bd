"""Faults real dependencies produce and the other fakes do not: answers that drip, and canned
answers of the wrong shape (issue 20).

- `DripProxy` relays to a fake. While `drip` is set, each connection accepted from then on
  receives the fake's answer one byte every `drip` seconds - for as long as it stays open, as a
  peer stuck on a slow path would; connections accepted later, after `drip` is cleared, are
  served at full speed. Given `TlsFiles` it terminates TLS on both sides, so each dripped byte
  is a TLS record of its own, as a dripping TLS peer sends them (dripping the encrypted stream
  instead would trip CPython's per-read SSL deadline, which a real drip does not).
- `CannedServer` answers every request with one fixed answer (status, headers, body), over
  HTTPS given `TlsFiles`: an identity endpoint that throttles with `Retry-After`, an STS or a
  Blob endpoint that answers 200 with an HTML page, and so on. It counts what it received.
  Given an http `upstream`, it forwards GETs there while `answer` is None (a dependency that
  throttles for a while, then recovers).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import socketserver
import ssl
import threading
from dataclasses import dataclass, field

from localcloud.certs import TlsFiles
from localcloud.https import LoopbackHttpsServer, LoopbackService, QuietHandler, server_context
from localcloud.net import LOOPBACK


class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


POLL_SECONDS = 0.05
"""How long a relay thread waits for a byte before it lets the other direction write."""


class DripProxy(LoopbackService):
    """`with DripProxy(port) as proxy: proxy.url("https")`; `proxy.drip = 0.2` to drip."""

    _thread_name = "drip-proxy"

    def __init__(self, target_port: int, tls: TlsFiles | None = None) -> None:
        self.target_port = target_port
        self.tls = tls
        self.drip = 0.0
        """Seconds per byte for connections accepted while set (0: relay at full speed)."""
        self.dripping = 0
        """Connections now being dripped to."""
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.port = 0

    def url(self, scheme: str = "https") -> str:
        return f"{scheme}://{LOOPBACK}:{self.port}"

    def _make_server(self) -> socketserver.BaseServer:
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._relay(self.request)

        self._stopping.clear()
        server = _ProxyServer((LOOPBACK, 0), Handler)
        self.port = server.server_address[1]
        return server

    def _relay(self, client: socket.socket) -> None:
        drip = self.drip
        upstream = socket.create_connection((LOOPBACK, self.target_port), timeout=30)
        upstream.settimeout(None)
        if self.tls is not None:
            try:
                client = server_context(self.tls).wrap_socket(client, server_side=True)
            except (ssl.SSLError, OSError):
                upstream.close()
                return
            context = ssl.create_default_context(cafile=str(self.tls.ca_cert))
            upstream = context.wrap_socket(upstream, server_hostname=LOOPBACK)
        # One thread per direction, but an SSL socket must never be read in one thread while it
        # is written in another (OpenSSL's SSL objects are not safe for that: it corrupted the
        # upstream TLS stream, "bad record mac", under load). So each socket has a lock, and
        # reads poll briefly so that the other direction can write in between.
        locks = {client: threading.Lock(), upstream: threading.Lock()}
        for sock in (client, upstream):
            sock.settimeout(POLL_SECONDS)
        with self._lock:
            self._open |= {client, upstream}
            self.dripping += 1 if drip else 0
        pump = threading.Thread(target=self._pump, args=(client, upstream, 0.0, locks), daemon=True)
        pump.start()
        try:
            self._pump(upstream, client, drip, locks)
        finally:
            pump.join(timeout=1)
            with self._lock:
                self._open -= {client, upstream}
                self.dripping -= 1 if drip else 0
            for sock in (client, upstream):
                sock.close()

    def _pump(
        self,
        source: socket.socket,
        sink: socket.socket,
        drip: float,
        locks: dict[socket.socket, threading.Lock],
    ) -> None:
        try:
            while not self._stopping.is_set():
                with locks[source]:
                    try:
                        data = source.recv(65536)
                    except TimeoutError:
                        continue  # nothing yet: let the other direction use the socket
                if not data:
                    break
                chunks = [data[i : i + 1] for i in range(len(data))] if drip else [data]
                for chunk in chunks:
                    if drip and self._stopping.wait(drip):
                        return
                    with locks[sink]:
                        sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            open_sockets = list(self._open)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        super().stop()


@dataclass
class Canned:
    """One HTTP answer."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/html; charset=utf-8"


class CannedServer(LoopbackService):
    """`with CannedServer(tls) as canned: canned.answer = Canned(429, ...)`; `canned.url`."""

    _thread_name = "canned"

    def __init__(
        self, tls: TlsFiles | None = None, answer: Canned | None = None, upstream: str = ""
    ) -> None:
        self.tls = tls
        self.upstream = upstream
        """http://host:port to forward to while `answer` is None."""
        self.answer: Canned | None = answer if answer or upstream else Canned()
        self.requests = 0
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self.port = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{LOOPBACK}:{self.port}"

    def _make_server(self) -> LoopbackHttpsServer:
        canned = self

        class Handler(QuietHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with canned._lock:
                    canned.requests += 1
                    canned.paths.append(self.path.split("?", 1)[0])
                answer = canned.answer or canned._forward(self.path, dict(self.headers))
                self.send_body(answer.status, answer.body, answer.content_type, answer.headers)

            do_GET = do_POST = do_PUT = do_HEAD = _answer

        server = LoopbackHttpsServer(0, Handler, self.tls)
        self.port = server.port
        return server

    def _forward(self, path: str, headers: dict[str, str]) -> Canned:
        host = self.upstream.split("://", 1)[1]
        connection = http.client.HTTPConnection(host, timeout=30)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            content_type = response.getheader("Content-Type") or "application/json"
            return Canned(response.status, body, {}, content_type)
        finally:
            connection.close()


def html_page(title: str = "Service Unavailable") -> bytes:
    """What a proxy or captive portal in front of a service answers instead of its document."""
    return f"<!DOCTYPE html><html><head><title>{title}</title></head><body/></html>".encode()


def sts_credentials_xml(expiration: str, *, with_credentials: bool = True) -> bytes:
    """An AssumeRoleWithWebIdentity answer (shape per the STS API reference) whose credentials
    expire at `expiration` (ISO 8601), or that holds none at all."""
    credentials = (
        "<Credentials><AccessKeyId>ASIAFAKEFAKEFAKEFAKE</AccessKeyId>"
        "<SecretAccessKey>c2VjcmV0</SecretAccessKey><SessionToken>dG9rZW4=</SessionToken>"
        f"<Expiration>{expiration}</Expiration></Credentials>"
        if with_credentials
        else ""
    )
    return (
        '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<AssumeRoleWithWebIdentityResult>{credentials}"
        "<SubjectFromWebIdentityToken>sub</SubjectFromWebIdentityToken>"
        "</AssumeRoleWithWebIdentityResult>"
        "<ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId>"
        "</ResponseMetadata></AssumeRoleWithWebIdentityResponse>"
    ).encode()
