"""The one place that derives the federation facts from the tenant id, and the IAM documents.

Pure functions over plain values (wrap them in `Output.apply` at the call site), so the Pulumi
program, the local cloud's STS front and the policy pack all agree on the exact same strings.

Facts behind them (docs/design.md "Audience and token version" and "The AWS trust policy"):
- Entra v1 access tokens carry `iss = https://sts.windows.net/{tenant}/` - with the trailing slash.
  The IAM OIDC provider URL must equal `iss`, and IAM names its condition keys after the provider
  URL without the scheme: `sts.windows.net/{tenant}/:aud` and `...:sub`.
- `aud` alone would trust every principal in the tenant that can get a token for the audience,
  so the trust policy also pins `sub` (the managed identity's service-principal object id).
- `roles`, `oid` and `appid` are not usable as IAM condition keys; the role check lives in Entra
  ("assignment required" on the federation app).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

APP_ROLE_VALUE = "AssumeAWSRole"
DEFAULT_APP_NAME = "AWS-Federation-App"
WEB_IDENTITY_ACTION = "sts:AssumeRoleWithWebIdentity"
S3_READ_ACTIONS = ("s3:ListBucket", "s3:GetObject")


def issuer_url(tenant_id: str) -> str:
    """The `iss` claim of an Entra v1 access token, which is also the IAM OIDC provider URL."""
    return f"https://sts.windows.net/{tenant_id}/"


def condition_key_prefix(tenant_id: str) -> str:
    """IAM names the provider's condition keys after its URL without `https://`."""
    return issuer_url(tenant_id).removeprefix("https://")


def tenant_audience(tenant_id: str, app_name: str = DEFAULT_APP_NAME) -> str:
    """Default identifier URI; contains the tenant id, so Entra's URI policy accepts it."""
    return f"api://{tenant_id}/{app_name}"


def app_id_audience(client_id: str) -> str:
    """`api://{appId}` passes even the strict `nonDefaultUriAddition` tenant policy."""
    return f"api://{client_id}"


def trust_policy(
    provider_arn: str, tenant_id: str, audience: str, subjects: Sequence[str]
) -> dict[str, Any]:
    """Role trust policy: only tokens for `audience` whose `sub` is one of `subjects`."""
    if not subjects:
        raise ValueError("the trust policy needs at least one trusted principal id (sub)")
    prefix = condition_key_prefix(tenant_id)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EntraManagedIdentities",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": WEB_IDENTITY_ACTION,
                "Condition": {
                    "StringEquals": {
                        f"{prefix}:aud": audience,
                        f"{prefix}:sub": sorted(set(subjects)),
                    }
                },
            }
        ],
    }


def bucket_arn(partition: str, bucket: str) -> str:
    """S3 ARNs carry the partition (`arn:aws-us-gov:s3:::b`, `arn:aws-cn:s3:::b`); take it from
    `aws.get_partition()`, never assume `aws`.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html"""
    return f"arn:{partition}:s3:::{bucket}"


def s3_read_policy(bucket: str, key_prefix: str = "", *, partition: str) -> dict[str, Any]:
    """Read-only access to one bucket, optionally to the keys under the folder `key_prefix` only.

    IAM matches `bucket/{prefix}*` and `s3:prefix` character by character, so the prefix must end
    with `/`: `reports*` would also grant `reports-confidential/...` (settings refuse it too).
    """
    if key_prefix and not key_prefix.endswith("/"):
        raise ValueError(f"key prefix {key_prefix!r} must end with '/' (it is a folder)")
    list_statement: dict[str, Any] = {
        "Sid": "ListTheBucket",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": bucket_arn(partition, bucket),
    }
    if key_prefix:
        list_statement["Condition"] = {"StringLike": {"s3:prefix": [f"{key_prefix}*"]}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            list_statement,
            {
                "Sid": "ReadObjects",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"{bucket_arn(partition, bucket)}/{key_prefix}*",
            },
        ],
    }


def bucket_tls_only_policy(bucket: str, *, partition: str) -> dict[str, Any]:
    """Bucket policy that refuses every request not made over TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn(partition, bucket), f"{bucket_arn(partition, bucket)}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def role_arn(partition: str, account_id: str, role_name: str) -> str:
    """ARN IAM gives a role at path `/`; known before the role exists, which breaks the cycle
    "app settings need the role ARN, the role's trust needs the app's identity"."""
    return f"arn:{partition}:iam::{account_id}:role/{role_name}"


# IAM counts a role trust policy without white space against a quota of 2,048 characters by
# default, which AWS Service Quotas can raise to 4,096; nothing beyond that exists.
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
TRUST_POLICY_DEFAULT_QUOTA = 2048
TRUST_POLICY_HARD_LIMIT = 4096


def policy_size(document: dict[str, Any]) -> int:
    """Characters IAM counts for `document` (it ignores white space)."""
    return len(json.dumps(document, separators=(",", ":")))


def estimated_trust_policy_size(tenant_id: str, audience_length: int, subject_count: int) -> int:
    """Size of the trust policy before the ids exist: object ids are GUIDs (36 characters) and
    the provider ARN has a fixed shape, so the estimate is exact up to the audience's length."""
    document = trust_policy(
        f"arn:aws-us-gov:iam::000000000000:oidc-provider/{condition_key_prefix(tenant_id)}",
        tenant_id,
        "a" * audience_length,
        [f"{n:036d}" for n in range(subject_count)],
    )
    return policy_size(document)


def pinning_problems(
    document: dict[str, Any], tenant_id: str, audience: str, subjects: Sequence[str]
) -> list[str]:
    """Why a deployed trust policy does not pin `aud` and exactly `subjects` (empty: it does).

    Every statement that allows the web-identity action must carry both `StringEquals`
    conditions: a single statement without `sub` trusts every identity that can get a token for
    the audience.
    """
    prefix = condition_key_prefix(tenant_id)
    allowing = [
        s
        for s in _as_list(document.get("Statement"))
        if s.get("Effect") == "Allow" and WEB_IDENTITY_ACTION in _as_list(s.get("Action"))
    ]
    if not allowing:
        return [f"no statement allows {WEB_IDENTITY_ACTION}"]
    problems = []
    for statement in allowing:
        equals = (statement.get("Condition") or {}).get("StringEquals") or {}
        if _as_list(equals.get(f"{prefix}:aud")) != [audience]:
            problems.append(f"aud is {equals.get(f'{prefix}:aud')!r}, expected {audience!r}")
        if f"{prefix}:sub" not in equals:
            problems.append(
                "no StringEquals on sub: every identity that can get a token for the audience "
                "may assume the role"
            )
            continue
        trusted = set(_as_list(equals[f"{prefix}:sub"]))
        if extra := sorted(trusted - set(subjects)):
            problems.append("sub trusts ids this stack does not: " + ", ".join(extra))
        if missing := sorted(set(subjects) - trusted):
            problems.append("sub lacks ids of this stack: " + ", ".join(missing))
    return problems


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]
