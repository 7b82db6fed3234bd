"""s3-public-access-block-complete and s3-bucket-has-public-access-block."""

from __future__ import annotations

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policy.rules import common
from policy.rules.s3_public_access_block_complete import PUBLIC_ACCESS_FLAGS
from policy.tests.engine import Resource, evaluate
from policy.tests.samples import ALL_BLOCKED, BUCKET, bucket_and_block


@pytest.mark.parametrize("by_dependency", [True, False], ids=["dependency", "value"])
def test_bucket_with_complete_public_access_block_passes(by_dependency: bool) -> None:
    # The engine links the block to the bucket through its `bucket` property's dependency;
    # a literal bucket name (no dependency) is matched by value.
    block = {**ALL_BLOCKED, "bucket": BUCKET if not by_dependency else UNKNOWN_STRING_VALUE}
    assert evaluate(bucket_and_block(block, by_dependency=by_dependency)) == []


@pytest.mark.parametrize("flag", PUBLIC_ACCESS_FLAGS)
@pytest.mark.parametrize("value", [False, None], ids=["false", "unset"])
def test_public_access_block_missing_a_flag_is_refused(flag: str, value: bool | None) -> None:
    block = {**ALL_BLOCKED, "bucket": BUCKET}
    block.pop(flag) if value is None else block.update({flag: value})
    found = evaluate(bucket_and_block(block, by_dependency=False))
    assert [v.policy for v in found] == ["s3-public-access-block-complete"]
    assert flag in found[0].message


@pytest.mark.parametrize("bucket_type", sorted(common.BUCKET_TYPES))
def test_bucket_without_public_access_block_is_refused(bucket_type: str) -> None:
    bucket = Resource(bucket_type, {"bucket": BUCKET})
    other = Resource(common.PUBLIC_ACCESS_BLOCK, {**ALL_BLOCKED, "bucket": "another"}, name="pab")
    found = evaluate([bucket, other])
    assert [(v.policy, v.urn) for v in found] == [("s3-bucket-has-public-access-block", bucket.urn)]
