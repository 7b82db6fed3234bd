"""Every S3 bucket of the stack has a public access block (a stack rule: they are two resources)."""

from __future__ import annotations

from collections.abc import Sequence

from pulumi_policy import Severity

from .common import (
    BUCKET_TYPES,
    PUBLIC_ACCESS_BLOCK,
    Finding,
    StackResource,
    links,
    names,
    stack_policy,
)


def check_buckets_have_public_access_block(resources: Sequence[StackResource]) -> list[Finding]:
    """Every S3 bucket of the stack has a public access block."""
    blocks = [r for r in resources if r.resource_type == PUBLIC_ACCESS_BLOCK]
    return [
        Finding(
            "the bucket has no aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock; "
            "add one with all four flags true",
            bucket.urn,
        )
        for bucket in resources
        if bucket.resource_type in BUCKET_TYPES
        and not any(links(b, "bucket", bucket, names(bucket, "bucket", "id")) for b in blocks)
    ]


POLICY = stack_policy(
    "s3-bucket-has-public-access-block",
    "Every S3 bucket has a public access block.",
    check_buckets_have_public_access_block,
    Severity.HIGH,
)
