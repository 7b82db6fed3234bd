"""An S3 public access block sets all four flags."""

from __future__ import annotations

from pulumi_policy import Severity

from .common import PUBLIC_ACCESS_BLOCK, Props, resource_policy

PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)


def check_public_access_block(resource_type: str, props: Props) -> list[str]:
    """A bucket public access block sets all four flags."""
    if resource_type != PUBLIC_ACCESS_BLOCK:
        return []
    missing = [flag for flag in PUBLIC_ACCESS_FLAGS if props.get(flag) is not True]
    if not missing:
        return []
    return [f"the public access block must set {', '.join(missing)} to true"]


POLICY = resource_policy(
    "s3-public-access-block-complete",
    "S3 public access blocks set all four flags to true.",
    check_public_access_block,
    Severity.HIGH,
)
