"""The role's read policy and the function agree on `crosscloud:s3KeyPrefix`: the function lists
with `Prefix=<prefix>` (IAM sees it as `s3:prefix`) and reads `<prefix><name>` (the object ARN),
and IAM matches both with only `*` and `?` as wildcards. A sibling folder that merely starts
with the same letters is granted neither."""

from __future__ import annotations

import pytest

from components import trust
from components.settings import parse_settings
from localcloud.trust_evaluation import iam_like

BUCKET = "crosscloud-dev-0123abcd"


def grants(prefix: str) -> tuple[list[str], str]:
    """(s3:prefix patterns of ListBucket, GetObject resource pattern) of the read policy."""
    listing, reading = trust.s3_read_policy(BUCKET, prefix, partition="aws")["Statement"]
    return listing["Condition"]["StringLike"]["s3:prefix"], reading["Resource"]


def may_list(prefix_asked: str, patterns: list[str]) -> bool:
    return any(iam_like(p, prefix_asked) for p in patterns)


def may_read(key: str, resource: str) -> bool:
    return iam_like(resource, f"arn:aws:s3:::{BUCKET}/{key}")


@pytest.mark.parametrize("prefix", ["reports/", "reports/2026/", "Q1 reports/é/"])
def test_what_the_function_asks_for_is_granted(prefix: str) -> None:
    prefix = parse_settings({"s3KeyPrefix": prefix}).s3_key_prefix
    listing, resource = grants(prefix)
    assert may_list(prefix, listing)  # ListObjectsV2(Prefix=prefix)
    assert may_read(f"{prefix}q1.csv", resource)  # GetObject(Key=prefix + name)
    assert may_read(f"{prefix}deeper/q2.csv", resource)


def test_a_sibling_folder_is_neither_listed_nor_read() -> None:
    listing, resource = grants("reports/")
    assert not may_read("reports-confidential/payroll.csv", resource)
    assert not may_list("reports-confidential/", listing)
    assert not may_list("", listing)  # the whole bucket
    assert not may_read("payroll.csv", resource)


def test_without_the_slash_the_sibling_would_be_granted() -> None:
    """Why the slash is required: the policy `reports` produced before it was refused."""
    resource = f"arn:aws:s3:::{BUCKET}/reports*"
    assert may_read("reports-confidential/payroll.csv", resource)
    assert may_list("reports-confidential/", ["reports*"])
