"""S3 server access logging of the data bucket into its own hardened log bucket.

AWS documents the setup for buckets with ACLs disabled (BucketOwnerEnforced), which is ours:
https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html
- the destination is in the same account and region, not the source bucket itself;
- the logging service is admitted by a bucket policy (no ACL grants): principal
  `logging.s3.amazonaws.com`, action `s3:PutObject` on the target prefix, conditioned on
  `aws:SourceArn` (the source bucket) and `aws:SourceAccount` (its owner), so no other account's
  or bucket's logs can be delivered here (confused deputy);
- default encryption of the destination may only be SSE-S3 (AES256), not SSE-KMS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import trust
from components.hardened_bucket import hardened_bucket
from components.settings import SettingsError

LOGGING_SERVICE = "logging.s3.amazonaws.com"
LOG_PREFIX = "s3-access/"


def log_delivery_statements(
    partition: str, log_bucket: str, source_bucket: str, source_account: str
) -> list[dict[str, Any]]:
    """Writes under `LOG_PREFIX` only by S3 logging, for one source bucket of one account (the
    bucket's TLS-only deny comes from `hardened_bucket`)."""
    return [
        {
            "Sid": "S3ServerAccessLogsPolicy",
            "Effect": "Allow",
            "Principal": {"Service": LOGGING_SERVICE},
            "Action": "s3:PutObject",
            "Resource": f"{trust.bucket_arn(partition, log_bucket)}/{LOG_PREFIX}*",
            "Condition": {
                "ArnLike": {"aws:SourceArn": trust.bucket_arn(partition, source_bucket)},
                "StringEquals": {"aws:SourceAccount": source_account},
            },
        }
    ]


def _distinct(log_bucket: str, source_bucket: str) -> str:
    if log_bucket == source_bucket:
        raise SettingsError(
            f"crosscloud:bucketName = {source_bucket!r} is not allowed: it is the name of the "
            "access-log bucket, and S3 access logs must go to another bucket, not into "
            "themselves (every delivery would be logged again); choose another name"
        )
    return log_bucket


@dataclass(frozen=True)
class S3AccessLogsArgs:
    """Inputs of `S3AccessLogs`."""

    log_bucket_name: str
    """Name of the log bucket (distinct from the data bucket; see naming.py)."""
    source_bucket_name: pulumi.Input[str]
    """The data bucket whose requests are logged (its output, so logging waits for it)."""
    account_id: str
    """AWS account owning both buckets (the `aws:SourceAccount` condition)."""
    partition: str
    """AWS partition of the account (aws, aws-us-gov, aws-cn), for every ARN."""
    retention_days: int
    """Log objects (and their old versions) expire after this many days."""


class S3AccessLogs(pulumi.ComponentResource):
    """A private, owner-enforced, encrypted, versioned, TLS-only bucket that only S3's logging
    service may write to, for one source bucket of one account; and that source's logging.
    """

    log_bucket_name: pulumi.Output[str]
    log_prefix: str = LOG_PREFIX

    def __init__(
        self, name: str, args: S3AccessLogsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("crosscloud:aws:S3AccessLogs", name, None, opts)
        hardened = hardened_bucket(
            name,
            args.log_bucket_name,
            partition=args.partition,
            parent=self,
            policy_role="policy",
            extra_statements=lambda log_bucket: pulumi.Output.from_input(
                args.source_bucket_name
            ).apply(
                lambda source: log_delivery_statements(
                    args.partition,
                    _distinct(log_bucket, source),
                    source,
                    args.account_id,
                )
            ),
        )
        bucket = hardened.bucket
        lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-retention",
            bucket=bucket.id,
            rules=[
                {
                    "id": "expire-access-logs",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "expiration": {"days": args.retention_days},
                    # Versioned: an expired log becomes a noncurrent version; remove it as well.
                    "noncurrent_version_expiration": {"noncurrent_days": 1},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                }
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[hardened.versioning]),
        )
        aws.s3.BucketLogging(
            f"{name}-source",
            bucket=args.source_bucket_name,
            target_bucket=bucket.id,
            target_prefix=LOG_PREFIX,
            # Keys by account/region/bucket/date: easy to query with Athena partitions.
            target_object_key_format={"partitioned_prefix": {"partition_date_source": "EventTime"}},
            # No expected_bucket_owner: the provider deprecated it on every bucket configuration
            # resource (always the caller's own account, so redundant; every preview would warn,
            # and the next major removes it): hashicorp/terraform-provider-aws#46262, #46292.
            # Both buckets are created by this stack with the same provider.
            # Deliveries fail until the policy admits the logging service.
            # Delete before replace: the bucket has one logging configuration, and deleting this
            # resource clears it (PutBucketLogging with an empty status). Replaced the default
            # way (create, then delete the old one), a same-bucket replacement - e.g. a ForceNew
            # input such as expected_bucket_owner dropped, as above (terraform-provider-aws
            # bucket_logging.go) - would leave logging off while the state says on.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*hardened.settings, lifecycle],
                delete_before_replace=True,
            ),
        )
        self.log_bucket_name = bucket.bucket
        self.register_outputs({"log_bucket_name": self.log_bucket_name})
