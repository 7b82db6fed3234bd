"""Every ARN the program writes is in the partition `aws.get_partition()` reported.

S3 ARNs are `arn:{partition}:s3:::bucket` (https://docs.aws.amazon.com/IAM/latest/UserGuide/
reference-arns.html); `arn:aws:s3:::` names nothing in aws-us-gov or aws-cn, so the role could
read nothing and the TLS-only bucket policy would be refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from localcloud.mocked_program import MockCloud, ProgramRun, run_program

POLICY_DOCUMENTS = {
    "aws:iam/role:Role": "assumeRolePolicy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
}
ARN = re.compile(r"arn:[^:\"]*:")


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@pytest.fixture(scope="module", params=["aws-us-gov", "aws-cn"])
def partitioned(request: pytest.FixtureRequest) -> tuple[str, ProgramRun]:
    return request.param, run_program({"s3KeyPrefix": "reports/"}, cloud=MockCloud(request.param))


def test_every_arn_in_every_iam_and_bucket_policy_is_in_the_partition(partitioned) -> None:
    partition, run = partitioned
    for token, key in POLICY_DOCUMENTS.items():
        (resource,) = run.of_type(token)
        arns = [s for s in strings(json.loads(resource.inputs[key])) if s.startswith("arn:")]
        assert arns, f"{token} names no ARN: nothing checked"
        assert all(arn.startswith(f"arn:{partition}:") for arn in arns), (token, arns)


def test_no_input_of_any_resource_names_another_partition(partitioned) -> None:
    # App settings (the role ARN), provider client lists, policy documents: all of it.
    partition, run = partitioned
    found = {
        match
        for resource in run.resources
        for text in strings(resource.inputs)
        for match in ARN.findall(text)
    }
    assert f"arn:{partition}:" in found
    assert found == {f"arn:{partition}:"}


def test_the_functions_get_the_role_arn_in_the_partition(partitioned) -> None:
    partition, run = partitioned
    for app in run.of_type("azure-native:web:WebApp"):
        settings = {s["name"]: s["value"] for s in app.inputs["siteConfig"]["appSettings"]}
        assert settings["CROSSCLOUD_AWS_ROLE_ARN"].startswith(f"arn:{partition}:iam::")
