"""Azure Functions app (Python v2 model): read one container and one bucket with the app's
managed identity only. Routes and answers: DESIGN.md section 4."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import azure.functions as func
from crosscloud_fn import redaction

# Before anything can log: no record created in this process may carry a credential.
redaction.install()

from crosscloud_fn import errors, service, telemetry  # noqa: E402 - after redaction.install()
from crosscloud_fn.names import BadName, validate_name  # noqa: E402
from crosscloud_fn.settings import SettingsError  # noqa: E402

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
log = logging.getLogger("crosscloud")


def _json(
    status: int, body: dict[str, Any], extra: dict[str, str] | None = None
) -> func.HttpResponse:
    # `extra`: Retry-After (seconds) on 503 and 504 answers, RFC 9110 section 10.2.3.
    return func.HttpResponse(
        json.dumps(body, ensure_ascii=False),
        status_code=status,
        mimetype="application/json",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", **(extra or {})},
    )


def _answer(route: str, work: Callable[[service.CrossCloud], dict[str, Any]]) -> func.HttpResponse:
    """Run `work` and turn any failure into the JSON error shape; never a stack trace."""
    request = telemetry.begin(route)
    runtime = None
    extra: dict[str, str] = {}
    try:
        runtime = service.current()
        request.attach(runtime)
        status, body = 200, work(runtime)
    except errors.CrossCloudError as exc:
        status, body, extra = exc.status, exc.body(), exc.headers()
    except SettingsError as exc:
        failure = errors.misconfigured(exc)
        status, body = failure.status, failure.body()
    except Exception:
        # The traceback goes to the (redacted) log only; the caller gets a generic answer.
        log.exception("unexpected failure in %s", route)
        failure = errors.internal()
        status, body = failure.status, failure.body()
    code = body["error"]["code"] if status >= 400 else "ok"
    telemetry.finish(request, status, code, runtime)
    return _json(status, body, extra)


@app.route(route="list", methods=["GET"])
def list_objects(req: func.HttpRequest) -> func.HttpResponse:
    """Names in the container and the bucket, plus which identity read them."""
    return _answer("list", lambda runtime: runtime.list_all())


@app.route(route="read", methods=["GET"])
def read_object(req: func.HttpRequest) -> func.HttpResponse:
    """The object called `name` from both stores: size, sha256 and text."""
    try:
        # A bad name is refused before any cloud is called.
        name = validate_name(req.params.get("name"))
    except BadName as exc:
        failure = errors.bad_name(exc)
        telemetry.finish(telemetry.begin("read"), failure.status, failure.code)
        return _json(failure.status, failure.body())
    return _answer("read", lambda runtime: runtime.read(name))


@app.route(route="whoami", methods=["GET"])
def whoami(req: func.HttpRequest) -> func.HttpResponse:
    """The federation token's non-secret claims (never the token)."""
    return _answer("whoami", lambda runtime: runtime.whoami())
