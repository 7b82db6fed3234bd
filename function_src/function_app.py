"""Azure Functions app (Python v2 model): read one container and one bucket with the app's
managed identity only. Routes and answers: docs/design.md "The function's contract"."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import azure.functions as func
from crosscloud_fn import redaction

# Before anything can log: no record created in this process may carry a credential.
redaction.install()

from crosscloud_fn import caller_auth, errors, service, telemetry  # noqa: E402 - after redaction
from crosscloud_fn.names import BadName, validate_name  # noqa: E402
from crosscloud_fn.settings import SettingsError  # noqa: E402

# ANONYMOUS at the host: a function key is a shared secret that says nothing about the caller.
# Every route is guarded in code by an Entra access token instead (crosscloud_fn/caller_auth.py).
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
log = logging.getLogger("crosscloud")


def _json(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> func.HttpResponse:
    # `headers`: WWW-Authenticate on 401/403 (RFC 6750 section 3); Retry-After (seconds) on 503
    # and 504 answers (RFC 9110 section 10.2.3).
    return func.HttpResponse(
        json.dumps(body, ensure_ascii=False),
        status_code=status,
        mimetype="application/json",
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            **(headers or {}),
        },
    )


def _admit(req: func.HttpRequest, request: telemetry.Request) -> func.HttpResponse | None:
    """None when the caller's token passes; else the 401/403/503 (or 500 misconfigured) answer."""
    try:
        caller = caller_auth.current().check(req.headers.get("Authorization"))
    except caller_auth.Refused as refused:
        request.note_caller(refused.caller, refused.outcome)
        telemetry.finish(request, refused.error.status, refused.error.code)
        return _json(refused.error.status, refused.error.body(), refused.error.headers())
    except SettingsError as exc:
        request.note_caller(None, "misconfigured")
        failure = errors.misconfigured(exc)
        telemetry.finish(request, failure.status, failure.code)
        return _json(failure.status, failure.body())
    except Exception:
        # Fail closed: a fault in the check never lets a request through.
        log.exception("unexpected failure checking the caller of %s", request.route)
        request.note_caller(None, "error")
        failure = errors.internal()
        telemetry.finish(request, failure.status, failure.code)
        return _json(failure.status, failure.body())
    request.note_caller(caller, "ok")
    return None


def _answer(
    route: str,
    req: func.HttpRequest,
    work: Callable[[service.CrossCloud, caller_auth.Caller | None], dict[str, Any]],
    prepare: Callable[[], None] | None = None,
) -> func.HttpResponse:
    """Admit the caller, run `work` and turn any failure into the JSON error shape; never a
    stack trace. The caller is checked before anything else is looked at or called."""
    request = telemetry.begin(route)
    refused = _admit(req, request)
    if refused is not None:
        return refused
    runtime = None
    extra: dict[str, str] = {}
    try:
        if prepare is not None:
            prepare()  # input checks: before the runtime is built or any cloud is called
        runtime = service.current()
        request.attach(runtime)
        status, body = 200, work(runtime, request.caller)
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
    return _answer("list", req, lambda runtime, _caller: runtime.list_all())


@app.route(route="read", methods=["GET"])
def read_object(req: func.HttpRequest) -> func.HttpResponse:
    """The object called `name` from both stores: size, sha256 and text."""
    names: list[str] = []

    def check_name() -> None:
        try:
            names.append(validate_name(req.params.get("name")))
        except BadName as exc:
            raise errors.bad_name(exc) from None

    return _answer("read", req, lambda runtime, _caller: runtime.read(names[0]), check_name)


@app.route(route="whoami", methods=["GET"])
def whoami(req: func.HttpRequest) -> func.HttpResponse:
    """The federation token's non-secret claims and who called (never a token)."""

    def whoami(runtime: service.CrossCloud, caller: caller_auth.Caller | None) -> dict[str, Any]:
        return {**runtime.whoami(), "caller": caller.public() if caller else None}

    return _answer("whoami", req, whoami)
