"""Buckets that IAM policies grant access to keep S3 server access logs, in another bucket that
only S3's logging service can write to, for this account and source bucket.

https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html: with
ACLs disabled (BucketOwnerEnforced) the destination admits `logging.s3.amazonaws.com` by bucket
policy, and AWS recommends the `aws:SourceArn` and `aws:SourceAccount` conditions so no other
bucket or account can deliver into it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import Severity

from .common import (
    BUCKET_TYPES,
    IAM_POLICY,
    IAM_ROLE_POLICY,
    Finding,
    StackResource,
    as_list,
    document,
    is_allow,
    links,
    names,
    prop,
    stack_policy,
    statements,
)

BUCKET_LOGGING_TYPES = frozenset(
    {"aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2"}
)
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ENCRYPTION_TYPES = frozenset(
    {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    }
)
LOGGING_SERVICE = "logging.s3.amazonaws.com"
REQUIRED_CONDITION_KEYS = ("aws:sourcearn", "aws:sourceaccount")


def _bucket_name(bucket: StackResource) -> str | None:
    value = prop(bucket.props, "bucket")
    return value if isinstance(value, str) and value else None


def _granted_buckets(resources: Sequence[StackResource]) -> set[str]:
    """Bucket names that IAM policy documents of the stack grant access to (the data buckets)."""
    granted: set[str] = set()
    for resource in resources:
        if resource.resource_type not in (IAM_ROLE_POLICY, IAM_POLICY):
            continue
        doc = document(prop(resource.props, "policy"))
        for statement in statements(doc) if doc else []:
            if is_allow(statement):
                for arn in as_list(statement.get("Resource")):
                    match = re.match(r"^arn:[^:]+:s3:::([^/*?]+)", str(arn))
                    if match:
                        granted.add(match.group(1))
    return granted


def _of(bucket: StackResource, resources: Sequence[StackResource], types: frozenset[str]):
    bucket_names = names(bucket, "bucket", "id")
    return [
        r
        for r in resources
        if r.resource_type in types and links(r, "bucket", bucket, bucket_names)
    ]


def _condition_keys(statement: Mapping[str, Any]) -> set[str]:
    conditions = statement.get("Condition")
    keys: set[str] = set()
    if isinstance(conditions, Mapping):
        for operator in conditions.values():
            if isinstance(operator, Mapping):
                keys |= {str(k).lower() for k in operator}
    return keys


def _services(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if not isinstance(principal, Mapping):
        return []
    return [str(s) for s in as_list(principal.get("Service"))]


def log_bucket_policy_problems(policy_value: Any) -> list[str]:
    """What is wrong with a log bucket's policy (empty when it is right)."""
    doc = document(policy_value)
    if doc is None:
        return ["the log bucket needs a bucket policy admitting only the S3 logging service"]
    problems = []
    tls_only = any(
        not is_allow(s)
        and "false"
        in [
            str(v).lower()
            for v in as_list((s.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport"))
        ]
        for s in statements(doc)
    )
    if not tls_only:
        problems.append(
            "the log bucket policy must deny requests without TLS (aws:SecureTransport)"
        )
    for statement in filter(is_allow, statements(doc)):
        if _services(statement) != [LOGGING_SERVICE]:
            problems.append(
                f"the log bucket policy may allow only {LOGGING_SERVICE}; readers get access "
                "through IAM, not the bucket policy"
            )
            continue
        actions = {str(a).lower() for a in as_list(statement.get("Action"))}
        if actions != {"s3:putobject"}:
            problems.append(f"{LOGGING_SERVICE} may only s3:PutObject, not {sorted(actions)}")
        missing = [k for k in REQUIRED_CONDITION_KEYS if k not in _condition_keys(statement)]
        if missing:
            problems.append(
                f"the statement admitting {LOGGING_SERVICE} must be conditioned on "
                "aws:SourceArn (the source bucket) and aws:SourceAccount (its owner); "
                f"missing {', '.join(missing)}"
            )
    return problems


def check_s3_access_logging(resources: Sequence[StackResource]) -> list[Finding]:
    """Data buckets log to another, hardened bucket that only the logging service writes."""
    buckets = [r for r in resources if r.resource_type in BUCKET_TYPES]
    loggings = [r for r in resources if r.resource_type in BUCKET_LOGGING_TYPES]
    granted = _granted_buckets(resources)
    findings: list[Finding] = []
    for bucket in buckets:
        name = _bucket_name(bucket)
        own = _of(bucket, resources, BUCKET_LOGGING_TYPES)
        if name in granted and not own:
            findings.append(
                Finding(
                    "an IAM policy grants access to this bucket but it has no server access "
                    "logging (aws:s3/bucketLogging:BucketLogging): reads would go unrecorded",
                    bucket.urn,
                )
            )
        for logging in own:
            if links(logging, "targetBucket", bucket, names(bucket, "bucket", "id")):
                findings.append(
                    Finding(
                        "access logs must go to another bucket, not the logged one", logging.urn
                    )
                )
    for target in buckets:
        target_names = names(target, "bucket", "id")
        if not any(links(lg, "targetBucket", target, target_names) for lg in loggings):
            continue
        ownership = _of(target, resources, frozenset({OWNERSHIP}))
        if not any(
            isinstance(rule := prop(o.props, "rule"), Mapping)
            and rule.get("objectOwnership") == "BucketOwnerEnforced"
            for o in ownership
        ):
            findings.append(
                Finding("the log bucket must set BucketOwnerEnforced (ACLs off)", target.urn)
            )
        if not _of(target, resources, ENCRYPTION_TYPES):
            findings.append(
                Finding("the log bucket needs default encryption (SSE-S3: AES256)", target.urn)
            )
        policies = _of(target, resources, frozenset({BUCKET_POLICY}))
        problems = (
            [
                p
                for policy in policies
                for p in log_bucket_policy_problems(prop(policy.props, "policy"))
            ]
            if policies
            else log_bucket_policy_problems(None)
        )
        findings += [Finding(p, target.urn) for p in problems]
    return findings


POLICY = stack_policy(
    "s3-access-logging",
    "Buckets an IAM policy grants access to have server access logging into another bucket "
    "that is owner-enforced, encrypted, TLS only and writable only by logging.s3.amazonaws.com "
    "with aws:SourceArn and aws:SourceAccount conditions.",
    check_s3_access_logging,
    Severity.HIGH,
)
