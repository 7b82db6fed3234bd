"""`make verify`'s Lambda check against botocore's Stubber (the Lambda API's real request and
answer shapes): it passes only when list and every read match sample_data/azure."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.response import StreamingBody
from botocore.stub import Stubber

from components.aws_readers import LAMBDA_TIMEOUT_SECONDS
from verify import aws_readers as verify_readers
from verify.aws_readers import lambda_client, lambda_reads_samples
from verify.checks import SAMPLE_DATA

FUNCTION = "crosscloud-dev-awsreader-abc123"
OUTPUTS = {"awsReaderFunctionName": FUNCTION, "awsRegion": "eu-west-1"}
SAMPLES = {p.name: p.read_bytes() for p in sorted((SAMPLE_DATA / "azure").iterdir()) if p.is_file()}


def _payload(body: dict) -> dict:
    raw = json.dumps(body).encode()
    return {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(raw), len(raw))}


def _expect(stub: Stubber, event: dict, body: dict) -> None:
    stub.add_response(
        "invoke",
        _payload(body),
        {
            "FunctionName": FUNCTION,
            "InvocationType": "RequestResponse",
            "Payload": json.dumps(event).encode(),
        },
    )


def _client(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return lambda_client("eu-west-1", 5.0)


def test_passes_when_the_lambda_lists_and_reads_the_samples(monkeypatch):
    client = _client(monkeypatch)
    with Stubber(client) as stub:
        _expect(stub, {"action": "list"}, {"status": 200, "azure": {"blobs": sorted(SAMPLES)}})
        for name, data in SAMPLES.items():
            digest = hashlib.sha256(data).hexdigest()
            _expect(
                stub, {"action": "read", "name": name}, {"status": 200, "azure": {"sha256": digest}}
            )
        check = lambda_reads_samples(OUTPUTS, 5.0, client)
        stub.assert_no_pending_responses()
    assert check.passed, check.detail


def test_fails_naming_the_hint_when_entra_refuses(monkeypatch):
    client = _client(monkeypatch)
    refusal = {
        "code": "federated_credential_mismatch",
        "message": "AADSTS700213",
        "hint": "subject",
    }
    with Stubber(client) as stub:
        _expect(stub, {"action": "list"}, {"status": 502, "error": refusal})
        check = lambda_reads_samples(OUTPUTS, 5.0, client)
    assert not check.passed
    assert "federated_credential_mismatch" in check.detail


def test_fails_when_a_read_differs(monkeypatch):
    client = _client(monkeypatch)
    first = sorted(SAMPLES)[0]
    with Stubber(client) as stub:
        _expect(stub, {"action": "list"}, {"status": 200, "azure": {"blobs": sorted(SAMPLES)}})
        _expect(
            stub, {"action": "read", "name": first}, {"status": 200, "azure": {"sha256": "0" * 64}}
        )
        check = lambda_reads_samples(OUTPUTS, 5.0, client)
    assert not check.passed and first in check.detail


def test_fails_saying_what_the_operator_needs_when_invoke_is_denied(monkeypatch):
    client = _client(monkeypatch)
    with Stubber(client) as stub:
        stub.add_client_error("invoke", "AccessDeniedException", http_status_code=403)
        check = lambda_reads_samples(OUTPUTS, 5.0, client)
    assert not check.passed and "lambda:InvokeFunction" in check.detail


def test_the_invoke_client_outwaits_the_lambda_and_never_invokes_twice(monkeypatch):
    client = _client(monkeypatch)
    assert verify_readers.LAMBDA_TIMEOUT_SECONDS == LAMBDA_TIMEOUT_SECONDS
    assert client.meta.config.read_timeout >= LAMBDA_TIMEOUT_SECONDS + 10  # + init phase
    assert client.meta.config.connect_timeout <= 5.0
    assert client.meta.config.retries["total_max_attempts"] == 1


def test_a_throttled_invoke_is_sent_once(monkeypatch):
    # Standard mode retries throttling; a retried invoke runs the function again. A loopback
    # endpoint counts the requests that reach it.
    requests: list[str] = []

    class Throttling(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            requests.append(self.path)
            body = json.dumps({"message": "Rate exceeded"}).encode()
            self.send_response(429)
            self.send_header("x-amzn-ErrorType", "TooManyRequestsException")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", f"http://127.0.0.1:{server.server_port}")
        check = lambda_reads_samples(OUTPUTS, 5.0, _client(monkeypatch))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert not check.passed and "TooManyRequestsException" in check.detail
    assert len(requests) == 1
