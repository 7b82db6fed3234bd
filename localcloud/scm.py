"""A fake SCM (Kudu) site of one Flex Consumption app: One Deploy's publish and its records.

What it imitates (Azure/azure-dev `funcapp_host_client.go`, Azure/azure-dev#3658 and #4439,
azure-functions-core-tools#4346):

- `POST /api/publish` with an ARM bearer token of a principal that may deploy (Website
  Contributor or Contributor on the app) and the zip as body: 202 and the deployment id as a
  JSON string; 401 for a bad token, 403 for a caller without the role;
- `GET /api/deployments/{id}`: the record (`id`, `status`, `status_text`, `complete`, `url`,
  `log_url`), 0 pending, 1 building, 2 deploying, then 3 failed or 4 success; 404
  "Deployment {id} not found." for an unknown id;
- `GET /api/deployments/{id}/log` and each entry's `details_url`.

`ScmScript` makes it misbehave the ways the real one does, one switch per path of the client:
a record that appears late, a worker recycled mid-deployment (the record is gone but the
deployment completes), the first-deploy storage 403, any other failure, an app that indexes
fewer functions than expected. A successful deployment makes the fake ARM list the functions
the script says the package holds (`FakeArm.index`).
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

from localcloud.arm import FakeArm, management_principal
from localcloud.certs import TlsFiles
from localcloud.https import LoopbackHttpsServer, LoopbackService, QuietHandler
from localcloud.net import LOOPBACK

MAX_PACKAGE_BYTES = 64 << 20
# What function_src/function_app.py holds: Python v2 functions are named after the Python
# function, their route is what clients call.
OUR_FUNCTIONS = {"list_objects": "list", "read_object": "read", "whoami": "whoami"}
# The log Flex writes when the app's identity may not write the package yet
# (azure-functions-core-tools#4346, Azure/azure-dev#4439).
STORAGE_FORBIDDEN_LOG = (
    "Failed to upload because Azure Storage responded with Forbidden : Response status code "
    "does not indicate success: 403 (This request is not authorized to perform this operation.).."
)


@dataclass
class ScmScript:
    """How the fake SCM site behaves; a test sets it before deploying."""

    refuse_publishes: int = 0
    """Publishes answered 403 (the deployer's Website Contributor not applied yet)."""
    unborn_polls: int = 0
    """404s for a new record before it appears."""
    progress_polls: int = 2
    """Polls of a record showing progress (1 building, then 2 deploying) before its end."""
    storage_forbidden: int = 0
    """Deployments that fail with the storage 403 (the app's own grant not applied yet)."""
    failure: str | None = None
    """A log message every deployment fails with (after any storage 403s)."""
    recycle_after: int | None = None
    """After this many polls with progress the worker is recycled: record gone, deployment done."""
    never_finishes: bool = False
    indexes: Mapping[str, str] = field(default_factory=lambda: dict(OUR_FUNCTIONS))
    """Functions (name -> route) the app lists once a deployment succeeded."""
    retry_after: str | None = None
    """A `Retry-After` header on every record answer."""


@dataclass
class ScmRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    principal_id: str | None
    status: int
    content_type: str | None = None
    accept: str | None = None
    body_sha256: str | None = None


@dataclass
class _Record:
    id: str
    outcome: int  # 3 or 4
    log: list[dict[str, Any]]
    details: dict[str, list[dict[str, Any]]]
    polls: int = 0


class FakeScm(LoopbackService):
    """Context manager: `with FakeScm(tls, arm=..., site=..., ...) as scm: scm.host`."""

    _thread_name = "fake-scm"

    def __init__(
        self,
        tls: TlsFiles,
        *,
        arm: FakeArm,
        site: str,
        jwks: dict[str, Any],
        issuer: str,
        deployers: set[str],
        script: ScmScript | None = None,
    ) -> None:
        self.tls = tls
        self.arm = arm
        self.site = site
        self.keys = jwt.PyJWKSet.from_dict(jwks)
        self.issuer = issuer
        self.deployers = deployers
        """Principal ids with Website Contributor (or Contributor) on the app."""
        self.script = script or ScmScript()
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}
        self._published = 0
        self._requests: list[ScmRequest] = []

    @property
    def host(self) -> str:
        """What the app's Repository host name would be: `127.0.0.1:{port}`."""
        if self._server is None:
            raise RuntimeError("FakeScm is not started")
        return f"{LOOPBACK}:{self._server.server_address[1]}"

    def requests(self) -> list[ScmRequest]:
        with self._lock:
            return list(self._requests)

    def deployments_published(self) -> int:
        with self._lock:
            return self._published

    # ---- the protocol --------------------------------------------------------------------------

    def publish(self, principal: str | None, body: bytes) -> tuple[int, Any]:
        script = self.script
        if principal not in self.deployers:
            if principal is None:
                return 401, {"Message": "Unauthorized"}
            return 403, {"Message": "The client does not have authorization"}
        if script.refuse_publishes > 0:
            script.refuse_publishes -= 1
            return 403, {"Message": "The client does not have authorization"}
        if not body:
            return 400, {"Message": "The request body is empty"}
        deployment_id = str(uuid.uuid4())
        with self._lock:
            self._published += 1
            forbidden = self._published <= script.storage_forbidden
        if forbidden:
            record = self._failed(deployment_id, STORAGE_FORBIDDEN_LOG)
        elif script.failure is not None:
            record = self._failed(deployment_id, script.failure)
        else:
            record = _Record(deployment_id, 4, _log(deployment_id, []), {})
        with self._lock:
            self._records[deployment_id] = record
        return 202, deployment_id

    def record(self, deployment_id: str) -> tuple[int, Any]:
        script = self.script
        with self._lock:
            record = self._records.get(deployment_id)
        if record is None:
            return 404, {"Message": f"Deployment {deployment_id} not found."}
        record.polls += 1
        if record.polls <= script.unborn_polls:
            return 404, {"Message": f"Deployment {deployment_id} not found."}
        progress = record.polls - script.unborn_polls
        recycled = script.recycle_after is not None and progress > script.recycle_after
        if recycled:
            # The worker is recycled: the record goes, the deployment itself completes.
            with self._lock:
                del self._records[deployment_id]
            self._complete(record)
            return 404, {"Message": f"Deployment {deployment_id} not found."}
        if script.never_finishes or progress <= script.progress_polls:
            status = 1 if progress <= script.progress_polls // 2 else 2
            return 200, self._answer(record, status, "Building" if status == 1 else "Deploying")
        if progress == script.progress_polls + 1:
            self._complete(record)
        text = "Deployment successful." if record.outcome == 4 else "Deployment failed."
        return 200, self._answer(record, record.outcome, text)

    def log(self, deployment_id: str, detail: str | None) -> tuple[int, Any]:
        with self._lock:
            record = self._records.get(deployment_id)
        if record is None:
            return 404, {"Message": f"Deployment {deployment_id} not found."}
        if detail is None:
            return 200, record.log
        if detail in record.details:
            return 200, record.details[detail]
        return 404, {"Message": "Not found"}

    # ---- internals -----------------------------------------------------------------------------

    def _complete(self, record: _Record) -> None:
        if record.outcome == 4:
            self.arm.index(self.site, self.script.indexes)

    def _failed(self, deployment_id: str, message: str) -> _Record:
        entries = _log(deployment_id, [message])
        step = entries[-1]["id"]
        entries[-1]["details_url"] = (
            f"https://{self.host}/api/deployments/{deployment_id}/log/{step}"
        )
        details = {step: [{"log_time": entries[-1]["log_time"], "message": message, "type": 2}]}
        return _Record(deployment_id, 3, entries, details)

    def _answer(self, record: _Record, status: int, text: str) -> dict[str, Any]:
        base = f"https://{self.host}/api/deployments/{record.id}"
        return {
            "id": record.id,
            "status": status,
            "status_text": text,
            "complete": status in (3, 4),
            "url": base,
            "log_url": f"{base}/log",
            "site_name": self.site,
        }

    def _handler(self) -> type[QuietHandler]:
        scm = self

        class Handler(QuietHandler):
            server_version = "FakeScm/1"

            def _serve(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_PACKAGE_BYTES:
                    self.close_connection = True
                    return self.send_json(413, {"Message": "Request body too large"})
                body = self.rfile.read(length) if length else b""
                principal, _refusal = management_principal(
                    self.headers.get("Authorization"), scm.keys, scm.issuer
                )
                parts = url.path.strip("/").split("/")
                if self.command == "POST" and url.path == "/api/publish":
                    status, answer = scm.publish(principal, body)
                elif principal is None:
                    status, answer = 401, {"Message": "Unauthorized"}
                elif principal not in scm.deployers:
                    status, answer = 403, {"Message": "The client does not have authorization"}
                elif self.command == "GET" and parts[:2] == ["api", "deployments"]:
                    if len(parts) == 3:
                        status, answer = scm.record(parts[2])
                    elif len(parts) in (4, 5) and parts[3] == "log":
                        status, answer = scm.log(parts[2], parts[4] if len(parts) == 5 else None)
                    else:
                        status, answer = 404, {"Message": "Not found"}
                else:
                    status, answer = 404, {"Message": "Not found"}
                with scm._lock:
                    scm._requests.append(
                        ScmRequest(
                            self.command,
                            url.path,
                            parse_qs(url.query),
                            principal,
                            status,
                            self.headers.get("Content-Type"),
                            self.headers.get("Accept"),
                            hashlib.sha256(body).hexdigest() if self.command == "POST" else None,
                        )
                    )
                headers = {}
                if scm.script.retry_after and parts[:2] == ["api", "deployments"]:
                    headers["Retry-After"] = scm.script.retry_after
                payload = json.dumps(answer).encode()
                self.send_body(status, payload, "application/json; charset=utf-8", headers)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler

    def _make_server(self) -> LoopbackHttpsServer:
        return LoopbackHttpsServer(0, self._handler(), self.tls)


def _log(deployment_id: str, failures: list[str]) -> list[dict[str, Any]]:
    """Log entries as Kudu lists them; `failures` become the last, error-typed entries."""
    messages = [
        ("Starting deployment pipeline.", 0),
        (f"Created blob uri for deployment {deployment_id}: released-package.zip", 0),
        ("Received Token using system assigned identity", 0),
        *((message, 2) for message in failures),
    ]
    if not failures:
        messages.append(("Deployment successful.", 0))
    return [
        {
            "log_time": f"2026-01-01T00:00:{second:02d}Z",
            "id": uuid.uuid4().hex,
            "message": message,
            "type": kind,
            "details_url": None,
        }
        for second, (message, kind) in enumerate(messages)
    ]
