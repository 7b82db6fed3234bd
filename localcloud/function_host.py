"""One function app on loopback: the real `function_src` code behind HTTPS and a function key.

`LocalCloud` starts one `python -m localcloud.function_host` per app, each with that app's own
environment (its app settings plus the variables App Service sets: IDENTITY_ENDPOINT,
IDENTITY_HEADER, WEBSITE_SITE_NAME), so every app has its own settings, identity and
per-process cached clients, as in Azure. The host does what the Functions host does for an HTTP
trigger at auth level FUNCTION: it answers 401 unless the request carries one of the app's keys
(header `x-functions-key` or query `code`), then hands an `azure.functions.HttpRequest` to the
registered function and sends back its `HttpResponse`.

Protocol with the parent: one JSON line on stdin (`name`, `function_src`, `port`, `tls` - the
`TlsFiles` paths - and `keys`); the keys travel there rather than in the environment because in
Azure the host holds them, not the app settings. Once listening it prints `listening <port>` on
stdout. It exits when stdin reaches end of file - its parent stopped it or died - so no host
outlives its cloud.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from localcloud.certs import TlsFiles
from localcloud.https import LoopbackHttpsServer, QuietHandler

ROUTE_PREFIX = "/api/"
KEY_HEADER = "x-functions-key"
KEY_PARAM = "code"

log = logging.getLogger("localcloud.function_host")


def load_functions(function_src: str) -> dict[str, Callable[[Any], Any]]:
    """Import the app the way the Python worker does (function_src is the app root) and index
    its HTTP functions by route."""
    sys.path.insert(0, function_src)
    import function_app

    return {
        fn.get_trigger().route: fn.get_user_function() for fn in function_app.app.get_functions()
    }


def key_matches(offered: str | None, keys: Mapping[str, str]) -> bool:
    if not offered:
        return False
    # Compared against every key in constant time: no timing hint about which one is close.
    results = [hmac.compare_digest(offered.encode(), key.encode()) for key in keys.values()]
    return any(results)


def handler(
    functions: Mapping[str, Callable[[Any], Any]], keys: Mapping[str, str]
) -> type[QuietHandler]:
    import azure.functions as func

    class Handler(QuietHandler):
        server_version = "LocalFunctionsHost/1"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            route = url.path.removeprefix(ROUTE_PREFIX) if url.path.startswith(ROUTE_PREFIX) else ""
            function = functions.get(route)
            if function is None:
                self.send_body(404, b"")
                return
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            if not key_matches(self.headers.get(KEY_HEADER) or params.get(KEY_PARAM), keys):
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
    functions = load_functions(spec["function_src"])
    tls = TlsFiles(**{name: Path(path) for name, path in spec["tls"].items()})
    server = LoopbackHttpsServer(spec["port"], handler(functions, spec["keys"]), tls)
    server.serve_in_thread("function-host")
    print(f"listening {server.port}", flush=True)
    log.info("serving %s on port %d", ", ".join(sorted(functions)), server.port)
    sys.stdin.read()  # returns at end of file: the parent stopped us or is gone
    logging.shutdown()
    # The server's request threads are daemons; leave without waiting for a slow client.
    os._exit(0)


if __name__ == "__main__":
    main()
