"""`make verify`'s Lambda check against botocore's Stubber (the Lambda API's real request and
answer shapes): it passes only when list and every read match sample_data/azure."""

from __future__ import annotations

import hashlib
import io
import json

from botocore.response import StreamingBody
from botocore.stub import Stubber

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
    refusal = {"code": "federated_credential_mismatch", "message": "AADSTS70021", "hint": "subject"}
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
