"""AWS readers end to end: the Lambda's package, run in an isolated interpreter, reads the data
container through the fake outbound federation and fake Entra; the rows `make demo` prints."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from localcloud import aws_readers_scenarios
from localcloud.aws_readers_local import AwsReadersLocal
from localcloud.cloud import LocalCloud
from verify.aws_readers import lambda_reads_samples


@pytest.fixture(scope="module")
def readers(cloud: LocalCloud) -> Iterator[AwsReadersLocal]:
    with AwsReadersLocal(cloud) as running:
        yield running


@pytest.fixture(scope="module")
def rows(readers: AwsReadersLocal, cloud: LocalCloud) -> dict[str, aws_readers_scenarios.Row]:
    blobs = {name: path.read_bytes() for name, path in cloud.world.blobs.items()}
    return {row.what: row for row in aws_readers_scenarios.run(readers, blobs)}


def test_every_row_is_what_it_should_be(rows):
    assert {what: row.problem for what, row in rows.items() if not row.met} == {}
    assert len(rows) == 8  # the stop row is added by `part`


def test_entra_names_the_audience_of_a_loose_token(rows):
    assert rows["Entra: other audience"].got == "AADSTS700212"


def test_the_lambda_reads_and_warm_calls_cost_nothing(rows):
    assert rows["list (cold)"].got.startswith("200")
    assert "0 STS 0 Entra" in rows["read + list (warm)"].got


def test_a_second_role_is_refused_with_aadsts700213_and_a_hint(rows, readers):
    row = rows["list, same package"]
    assert "AADSTS700213" in row.got
    assert "SUBJECT differs" in row.hint
    assert readers.spec.subject in row.hint and readers.issuer in row.hint


def test_the_packaged_handler_refuses_a_bad_event(readers):
    answer = readers.hosts["lambda"].invoke({"action": "bogus"})["answer"]
    assert answer["error"]["code"] == "bad_request"


def test_no_token_in_answers_or_logs(readers, rows, cloud):
    logs = "".join(host.log_path.read_text(errors="replace") for host in readers.hosts.values())
    answers = repr(rows)
    tokens = readers.sts.issued + cloud.entra.issued_tokens()
    assert readers.sts.issued
    assert '"status": 200' in logs  # the per-invocation record is there
    for token in tokens:
        assert token not in logs
        assert token not in answers


def test_a_disabled_account_feature_is_named(readers):
    account = readers.spec.role_arn.split(":")[4]
    readers.sts.add_account(account, enabled=False)
    try:
        # The other role's host holds no Entra token, so it asks STS again.
        answer = readers.hosts["other"].invoke({"action": "list"})["answer"]
    finally:
        readers.sts.add_account(account, enabled=True)
    assert (answer["status"], answer["error"]["code"]) == (502, "outbound_federation_disabled")
    assert "awsOutboundFederation" in answer["error"]["hint"]


def _verify_client(readers: AwsReadersLocal, cloud: LocalCloud) -> Any:
    return boto3.session.Session(
        aws_access_key_id="operator", aws_secret_access_key="operator-secret"
    ).client(
        "lambda",
        region_name="eu-west-1",
        endpoint_url=readers.api.endpoint_url,
        verify=str(cloud.tls.ca_cert),
        config=Config(retries={"total_max_attempts": 1}),
    )


def test_make_verify_invokes_the_lambda_through_the_lambda_api(readers, cloud):
    client = _verify_client(readers, cloud)
    outputs = {"awsReaderFunctionName": readers.spec.function_name, "awsRegion": "eu-west-1"}
    check = lambda_reads_samples(outputs, 30.0, client)
    assert check.passed, check.detail
    # The same check against a function whose role is not the credential's subject fails,
    # naming the refusal.
    refused = lambda_reads_samples({**outputs, "awsReaderFunctionName": "other"}, 30.0, client)
    assert not refused.passed
    assert "federated_credential_mismatch" in refused.detail
