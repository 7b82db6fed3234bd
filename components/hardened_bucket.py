"""The S3 bucket hardening every bucket of the program gets (data and access-log buckets alike).

A plain function, not a ComponentResource: the resources keep the names and parent they had
inside `AwsWebIdentityAccess`, so moving the code here changes no URN of a deployed stack.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import trust

PolicyStatements = Callable[[str], pulumi.Input[list[dict[str, Any]]]]
"""Given the bucket's name, the statements its policy adds to the TLS-only deny."""


@dataclass(frozen=True)
class HardenedBucket:
    """A bucket and the settings that must exist before anything is written into it."""

    bucket: aws.s3.Bucket
    versioning: aws.s3.BucketVersioning
    """Lifecycle rules on noncurrent versions wait for it."""
    settings: list[pulumi.Resource]
    """Public access block, ownership, encryption, versioning and policy."""


def hardened_bucket(
    name: str,
    bucket_name: str,
    *,
    partition: str,
    parent: pulumi.Resource,
    policy_role: str = "tls-only",
    extra_statements: PolicyStatements | None = None,
) -> HardenedBucket:
    """Private (all four public access blocks), owner-enforced (ACLs off), SSE-S3 encrypted,
    versioned bucket whose policy refuses every request not made over TLS.

    SSE-S3 (AES256) rather than SSE-KMS: S3 server access log destinations accept only SSE-S3
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html),
    and one setting for every bucket keeps them alike. `extra_statements` adds statements to the
    bucket's only policy (a bucket has one); the policy resource is named `{name}-{policy_role}`.
    """
    child = pulumi.ResourceOptions(parent=parent)
    bucket = aws.s3.Bucket(f"{name}-bucket", bucket=bucket_name, opts=child)
    public_access = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    ownership = aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket.id,
        rule={"object_ownership": "BucketOwnerEnforced"},  # ACLs off
        opts=child,
    )
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        # No bucket key: S3 Bucket Keys only reduce calls to KMS, which SSE-S3 never makes
        # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html).
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
        opts=child,
    )
    versioning = aws.s3.BucketVersioning(
        f"{name}-versioning",
        bucket=bucket.id,
        versioning_configuration={"status": "Enabled"},
        opts=child,
    )

    def policy_document(bucket_id: str) -> pulumi.Output[str]:
        tls_only = trust.bucket_tls_only_policy(bucket_id, partition=partition)
        extra = extra_statements(bucket_id) if extra_statements else []
        return pulumi.Output.from_input(extra).apply(
            lambda statements: json.dumps(
                {**tls_only, "Statement": [*tls_only["Statement"], *statements]}
            )
        )

    policy = aws.s3.BucketPolicy(
        f"{name}-{policy_role}",
        bucket=bucket.id,
        policy=bucket.bucket.apply(policy_document),
        # S3 rejects a bucket policy while the public access block is being applied.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[public_access]),
    )
    return HardenedBucket(
        bucket, versioning, [public_access, ownership, encryption, versioning, policy]
    )
