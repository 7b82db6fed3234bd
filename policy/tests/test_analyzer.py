"""The pack booted the way the Pulumi engine boots it (`python -m pulumi.policy`, which runs this
folder and serves the analyzer over gRPC), then asked over the wire what the engine asks: its
policies, and verdicts on resources and on a stack. No Pulumi CLI needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import StackValidationPolicy
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from components import trust
from policy import rules
from policy.rules import common
from policy.rules.s3_public_access_block_complete import PUBLIC_ACCESS_FLAGS
from policy.tests.test_pack import PACK

TENANT = "11111111-2222-3333-4444-555555555555"
PROVIDER_ARN = f"arn:aws:iam::123456789012:oidc-provider/sts.windows.net/{TENANT}/"


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and pack
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", str(PACK)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = process.stdout.readline().strip() if process.stdout else ""
        assert port.isdigit(), f"the pack did not start: {port!r} {process.stderr.read()}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.terminate()
        process.wait(timeout=30)


def struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(props)
    return message


def urn(resource_type: str, name: str) -> str:
    return f"urn:pulumi:prod::crosscloud::{resource_type}::{name}"


def analyze(stub: analyzer_pb2_grpc.AnalyzerStub, resource_type: str, props: Mapping[str, Any]):
    request = analyzer_pb2.AnalyzeRequest(
        type=resource_type, properties=struct(props), urn=urn(resource_type, "r"), name="r"
    )
    return stub.Analyze(request).diagnostics


def role(document: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": "S3AccessRoleFromAzure", "assumeRolePolicy": json.dumps(document)}


def test_the_engine_sees_every_rule_as_mandatory(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "crosscloud-guardrails"
    assert [p.name for p in info.policies] == [p.name for p in rules.POLICIES]
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}
    stack_rules = {p.name for p in info.policies if p.policy_type == analyzer_pb2.POLICY_TYPE_STACK}
    assert stack_rules == {p.name for p in rules.POLICIES if isinstance(p, StackValidationPolicy)}
    assert {"s3-bucket-has-public-access-block", "web-identity-role-least-privilege"} <= stack_rules


def test_compliant_role_passes_and_loose_one_is_refused(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    pinned = trust.trust_policy(PROVIDER_ARN, TENANT, f"api://{TENANT}/AWS-Federation-App", ["x"])
    assert list(analyze(analyzer, common.IAM_ROLE, role(pinned))) == []

    loose = json.loads(json.dumps(pinned))
    del loose["Statement"][0]["Condition"]["StringEquals"][f"sts.windows.net/{TENANT}/:sub"]
    [diagnostic] = analyze(analyzer, common.IAM_ROLE, role(loose))
    assert diagnostic.policyName == "web-identity-trust-pins-aud-and-sub"
    assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    assert ":sub with StringEquals" in diagnostic.message


def test_unknown_value_becomes_an_advisory_note(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    props = {"accountName": "a", "allowSharedKeyAccess": UNKNOWN_STRING_VALUE}
    [diagnostic] = analyze(analyzer, common.STORAGE_ACCOUNT, props)
    assert diagnostic.enforcementLevel == analyzer_pb2.ADVISORY
    assert "can't run policy 'storage-account-shared-key-disabled'" in diagnostic.message


def test_stack_rule_links_the_block_to_its_bucket_by_dependency(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    bucket_urn = urn("aws:s3/bucket:Bucket", "bucket")
    bucket = analyzer_pb2.AnalyzerResource(
        type="aws:s3/bucket:Bucket", urn=bucket_urn, name="bucket", properties=struct({})
    )
    block = analyzer_pb2.AnalyzerResource(
        type=common.PUBLIC_ACCESS_BLOCK,
        urn=urn(common.PUBLIC_ACCESS_BLOCK, "block"),
        name="block",
        properties=struct(dict.fromkeys(PUBLIC_ACCESS_FLAGS, True)),
        propertyDependencies={
            "bucket": analyzer_pb2.AnalyzerPropertyDependencies(urns=[bucket_urn])
        },
    )
    stack = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[bucket, block]))
    assert list(stack.diagnostics) == []

    alone = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[bucket]))
    [diagnostic] = alone.diagnostics
    assert diagnostic.policyName == "s3-bucket-has-public-access-block"
    assert diagnostic.urn == bucket_urn
    assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
