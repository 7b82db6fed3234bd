"""One function app on loopback: the app from its deployment package, behind HTTPS and a key.

`LocalCloud` unpacks the package `shipping/build.py` makes (the zip `pulumi up` deploys, built
for the running Python) and starts this file once per app as

    python -I -S localcloud/function_host.py      (cwd: the unpacked package)

`-I` ignores PYTHON* variables and the user's site-packages and, since Python 3.11, leaves this
file's folder off sys.path; `-S` skips `site`, so no virtualenv or system site-packages either.
The host then puts the package's `.python_packages/lib/site-packages` and the app root in front
of the standard library, the search order of the Python worker's customer mode
(Azure/azure-functions-python-worker, azure_functions_worker/utils/dependency.py,
`DependencyManager.use_customer_dependencies`: "1. cx_deps_path 2. cx_working_dir"). So the app
imports only what the package holds: a dependency the builder left out fails here as it would in
Azure. That is why this file imports nothing but the standard library (and, from the package,
`azure.functions`), and repeats the few lines of TLS server it needs instead of importing
localcloud.https.

Each app has its own environment (its app settings plus the variables App Service sets:
IDENTITY_ENDPOINT, IDENTITY_HEADER, WEBSITE_SITE_NAME), so every app has its own settings,
identity and per-process cached clients, as in Azure. The host does what the Functions host does
for an HTTP trigger at its declared auth level: at FUNCTION (or ADMIN) it answers 401 unless the
request carries one of the app's keys (header `x-functions-key` or query `code`); at ANONYMOUS,
what the app declares (its routes are guarded in code by an Entra token), it checks nothing. Then
it hands an `azure.functions.HttpRequest` to the registered function and sends back its
`HttpResponse`.

Protocol with the parent: one JSON line on stdin (`name`, `app_root`, `port`, `server_cert`,
`server_key` and `keys`); the keys travel there rather than in the environment because in Azure
the host holds them, not the app settings. Once listening it prints `listening <port>` on
stdout. It exits when stdin reaches end of file - its parent stopped it or died - so no host
outlives its cloud.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SITE_PACKAGES = ".python_packages/lib/site-packages"
"""Where the package holds its dependencies (shipping.build.SITE_PACKAGES)."""
LOOPBACK = "127.0.0.1"
ROUTE_PREFIX = "/api/"
KEY_HEADER = "x-functions-key"
KEY_PARAM = "code"

log = logging.getLogger("localcloud.function_host")


def package_path(app_root: str) -> list[str]:
    """The package's folders, in the worker's order, to put in front of the standard library."""
    return [str(Path(app_root, SITE_PACKAGES)), app_root]


def load_functions(app_root: str) -> dict[str, tuple[Callable[[Any], Any], bool]]:
    """Import the app the way the Python worker does and index its HTTP functions by route:
    (function, whether the host wants a key for it - any auth level but ANONYMOUS)."""
    sys.path[:0] = package_path(app_root)
    import function_app

    return {
        fn.get_trigger().route: (
            fn.get_user_function(),
            str(getattr(fn.get_trigger().auth_level, "name", "FUNCTION")) != "ANONYMOUS",
        )
        for fn in function_app.app.get_functions()
    }


def key_matches(offered: str | None, keys: Mapping[str, str]) -> bool:
    if not offered:
        return False
    # Compared against every key in constant time: no timing hint about which one is close.
    results = [hmac.compare_digest(offered.encode(), key.encode()) for key in keys.values()]
    return any(results)


class _TlsServer(ThreadingHTTPServer):
    """localcloud.https.LoopbackHttpsServer in short: handshake in the request's thread (a slow
    client cannot stall accept), Nagle off (no delayed-ACK pause between headers and body)."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler], cert: str, key: str):
        super().__init__((LOOPBACK, port), handler)
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(cert, key)

    def get_request(self) -> tuple[socket.socket, Any]:
        request, client_address = super().get_request()
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return request, client_address

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request = self._tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)


def handler(
    functions: Mapping[str, tuple[Callable[[Any], Any], bool]], keys: Mapping[str, str]
) -> type[BaseHTTPRequestHandler]:
    import azure.functions as func

    class Handler(BaseHTTPRequestHandler):
        server_version = "LocalFunctionsHost/1"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def send_body(
            self,
            status: int,
            body: bytes,
            content_type: str | None = None,
            headers: Mapping[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            route = url.path.removeprefix(ROUTE_PREFIX) if url.path.startswith(ROUTE_PREFIX) else ""
            if route not in functions:
                self.send_body(404, b"")
                return
            function, wants_key = functions[route]
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            offered = self.headers.get(KEY_HEADER) or params.get(KEY_PARAM)
            if wants_key and not key_matches(offered, keys):
                # What the Functions host answers for a FUNCTION-level route without a valid key.
                self.send_body(401, b"")
                return
            request = func.HttpRequest(
                "GET",
                f"https://{self.headers.get('Host', 'localhost')}{self.path}",
                headers=dict(self.headers.items()),
                params=params,
                route_params={},
                body=b"",
            )
            try:
                response = function(request)
            except Exception:
                # The function maps its own failures; this is the host's last resort.
                log.exception("function %s raised", route)
                self.send_body(500, b"")
                return
            content_type = response.mimetype
            if response.charset:
                content_type += f"; charset={response.charset}"
            self.send_body(
                response.status_code,
                response.get_body(),
                content_type,
                headers=dict(response.headers.items()),
            )

    return Handler


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s {spec['name']} %(name)s %(levelname)s %(message)s",
    )
    functions = load_functions(spec["app_root"])
    server = _TlsServer(
        spec["port"], handler(functions, spec["keys"]), spec["server_cert"], spec["server_key"]
    )
    threading.Thread(
        target=server.serve_forever, args=(0.05,), name="function-host", daemon=True
    ).start()
    print(f"listening {server.server_address[1]}", flush=True)
    log.info("serving %s on port %d", ", ".join(sorted(functions)), server.server_address[1])
    sys.stdin.read()  # returns at end of file: the parent stopped us or is gone
    logging.shutdown()
    # The server's request threads are daemons; leave without waiting for a slow client.
    os._exit(0)


if __name__ == "__main__":
    main()
