"""The per-request record (crosscloud_fn.telemetry): its fields, and that it never carries a
secret, at INFO and with every logger at DEBUG."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from crosscloud_fn import telemetry

from tests.function.conftest import FUNCTION_SRC, MakeFunction, World
from tests.function.test_logging import LOUD_LOGGERS, Capture, leaks


@pytest.fixture(params=[logging.INFO, logging.DEBUG], ids=["INFO", "DEBUG"])
def logs(request: pytest.FixtureRequest) -> Iterator[Capture]:
    capture = Capture()
    levels = {name: logging.getLogger(name).level for name in LOUD_LOGGERS}
    for name in LOUD_LOGGERS:
        logging.getLogger(name).setLevel(request.param)
    logging.getLogger().addHandler(capture)
    yield capture
    logging.getLogger().removeHandler(capture)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def request_records(capture: Capture) -> list[dict]:
    """The records as Application Insights' `parse_json(message)` would see them."""
    return [
        json.loads(r.getMessage())
        for r in capture.records
        if r.name == "crosscloud.request" and r.levelno == logging.INFO
    ]


def test_one_record_per_request_with_every_field(
    make_function: MakeFunction, world: World, logs: Capture
) -> None:
    fn = make_function("uami")
    assert fn.call("read", name="hello.txt").status == 200
    assert fn.call("read", name="hello.txt").status == 200
    assert fn.call("read", name="../etc/passwd").status == 400

    cold, warm, refused = request_records(logs)
    principal = world.identities["uami"].principal_id
    for record in (cold, warm, refused):
        assert tuple(record) == telemetry.FIELDS
        assert record["event"] == "crosscloud.request" and record["route"] == "read"
    assert cold["status"] == 200 and cold["code"] == "ok"
    assert cold["cold"] is True and warm["cold"] is False
    # The first request fetched AWS credentials from STS; the warm one reused them.
    assert cold["aws_credentials_refreshed"] is True
    assert warm["aws_credentials_refreshed"] is False
    assert cold["principal_id"] == principal and warm["principal_id"] == principal
    for record in (cold, warm):
        assert 0 < record["azure_ms"] <= record["duration_ms"]
        assert 0 < record["aws_ms"] <= record["duration_ms"]
    # A bad name is refused before any cloud is called: no cloud time, nothing invented.
    assert refused["status"] == 400 and refused["code"] == "bad_name"
    assert refused["azure_ms"] is None and refused["aws_ms"] is None
    assert refused["cold"] is None and refused["principal_id"] is None


def test_refusals_are_recorded_with_their_code(
    make_function: MakeFunction, world: World, logs: Capture
) -> None:
    answer = make_function(CROSSCLOUD_AUDIENCE=world.other_audience).call("list")
    assert answer.status == 502
    (record,) = request_records(logs)
    assert record["status"] == 502 and record["code"] == answer.body["error"]["code"]
    assert record["route"] == "list" and record["cold"] is True


def test_the_record_carries_no_secret(
    make_function: MakeFunction, world: World, logs: Capture
) -> None:
    for identity in ("sami", "uami"):
        fn = make_function(identity)
        for route, params in (("list", {}), ("read", {"name": "hello.txt"}), ("whoami", {})):
            assert fn.call(route, **params).status == 200
    assert make_function("stranger").call("whoami").status == 502

    records = request_records(logs)
    assert len(records) == 7
    text = "\n".join(json.dumps(r) for r in records)
    secrets = world.secrets()
    assert secrets and leaks(text, secrets) == []
    assert "eyJ" not in text  # no JWT, whole or in part
    # Only the listed fields, with ids and numbers as values: nothing for a token to hide in.
    for record in records:
        assert set(record) == set(telemetry.FIELDS)
        assert all(
            isinstance(v, (int, float, bool, type(None))) or len(str(v)) <= 40
            for v in record.values()
        )


def test_host_keeps_every_record() -> None:
    """The host forwards the worker's INFO records (category `Function`) and does not sample
    them away: adaptive sampling would make refusal counts and percentiles guesses.
    https://learn.microsoft.com/azure/azure-functions/functions-host-json#applicationinsights"""
    host = json.loads((FUNCTION_SRC / "host.json").read_text())
    levels = host["logging"]["logLevel"]
    assert levels["Function"] in ("Information", "Debug", "Trace")
    sampling = host["logging"]["applicationInsights"]["samplingSettings"]
    excluded = {t.strip() for t in sampling.get("excludedTypes", "").split(";")}
    assert not sampling.get("isEnabled", True) or "Trace" in excluded
