"""AWS side: the OIDC provider for the Entra tenant (unless one exists), the hardened bucket and
the read-only role."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components import trust
from components.hardened_bucket import hardened_bucket
from components.naming import slug
from components.oidc_provider import openid_connect_provider
from components.settings import SettingsError


@dataclass(frozen=True)
class AwsWebIdentityAccessArgs:
    """Inputs of `AwsWebIdentityAccess`."""

    tenant_id: str
    """Entra tenant whose v1 tokens (`iss` = https://sts.windows.net/{tenant}/) are trusted."""
    audience: pulumi.Input[str]
    """The federation app's identifier URI: the only `aud` the provider and role accept."""
    trusted_principal_ids: Sequence[pulumi.Input[str]]
    """Service-principal object ids allowed to assume the role (the token's `sub`)."""
    role_name: str
    """IAM role name."""
    bucket_name: str
    """S3 bucket name (see naming.py for the rules)."""
    partition: str
    """AWS partition (`aws`, `aws-us-gov`, `aws-cn`) from `aws.get_partition()`: every ARN the
    policies name is built in it."""
    key_prefix: str = ""
    """Limit reads (and listing) to keys under this prefix; empty means the whole bucket."""
    sample_objects: Mapping[str, Path] = field(default_factory=dict)
    """Objects to put in the bucket: key (below `key_prefix`) -> local file."""
    audience_length: int = 64
    """Length of the audience, to size the trust policy before the ids exist."""
    provider_arn: pulumi.Input[str] | None = None
    """An IAM OIDC provider for the tenant that exists already (a foundation's, or one made by
    hand); None creates one here. The role trusts exactly this provider."""


class AwsWebIdentityAccess(pulumi.ComponentResource):
    """IAM OIDC provider (or an existing one) + role trusting only chosen Entra identities + one
    readable bucket."""

    role_arn: pulumi.Output[str]
    bucket_name: pulumi.Output[str]
    provider_arn: pulumi.Output[str]
    trust_policy: pulumi.Output[str]
    """The role's trust policy document (JSON)."""
    read_policy: pulumi.Output[str]
    """The role's only permissions (JSON): list and read the one bucket."""

    def __init__(
        self,
        name: str,
        args: AwsWebIdentityAccessArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("crosscloud:aws:AwsWebIdentityAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        if args.provider_arn is None:
            provider_arn = openid_connect_provider(
                f"{name}-oidc", args.tenant_id, [args.audience], child
            ).arn
        else:
            provider_arn = pulumi.Output.from_input(args.provider_arn)

        hardened = hardened_bucket(name, args.bucket_name, partition=args.partition, parent=self)
        bucket = hardened.bucket
        # Parts of an upload that never completes are stored (and billed) until aborted, and no
        # listing shows them: abort after a week (checkov CKV_AWS_300; AWS "Configuring a bucket
        # lifecycle configuration to delete incomplete multipart uploads"). No expiration: the
        # data itself is kept.
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-abort-incomplete-uploads",
            bucket=bucket.id,
            rules=[
                {
                    "id": "abort-incomplete-multipart-uploads",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
                }
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[hardened.versioning]),
        )

        _check_trust_policy_size(args)

        trust_policy = pulumi.Output.all(
            provider_arn, args.audience, *args.trusted_principal_ids
        ).apply(
            lambda values: json.dumps(
                trust.trust_policy(values[0], args.tenant_id, values[1], values[2:])
            )
        )
        role = aws.iam.Role(
            f"{name}-role",
            name=args.role_name,
            description="Assumed with Entra managed-identity tokens (secretless cross-cloud read).",
            assume_role_policy=trust_policy,
            # botocore refreshes 15 minutes before expiry; an hour keeps refreshes rare.
            max_session_duration=3600,
            opts=child,
        )
        read_policy = bucket.bucket.apply(
            lambda bucket_name: json.dumps(
                trust.s3_read_policy(bucket_name, args.key_prefix, partition=args.partition)
            )
        )
        aws.iam.RolePolicy(f"{name}-read", role=role.id, policy=read_policy, opts=child)

        for key, path in sorted(args.sample_objects.items()):
            aws.s3.BucketObjectv2(
                f"{name}-object-{slug(key, 40)}",
                bucket=bucket.id,
                key=f"{args.key_prefix}{key}",
                source=pulumi.FileAsset(str(path)),
                content_type="text/plain; charset=utf-8",
                opts=pulumi.ResourceOptions(parent=self, depends_on=hardened.settings),
            )

        self.role_arn = role.arn
        self.bucket_name = bucket.bucket
        self.provider_arn = provider_arn
        self.trust_policy = trust_policy
        self.read_policy = read_policy
        self.register_outputs(
            {
                "role_arn": self.role_arn,
                "bucket_name": self.bucket_name,
                "provider_arn": self.provider_arn,
                "trust_policy": self.trust_policy,
                "read_policy": self.read_policy,
            }
        )


def _check_trust_policy_size(args: AwsWebIdentityAccessArgs) -> None:
    """Fail at preview, not half-way through `pulumi up`, when IAM would refuse the policy."""
    size = trust.estimated_trust_policy_size(
        args.tenant_id, args.audience_length, len(args.trusted_principal_ids)
    )
    count = len(args.trusted_principal_ids)
    if size > trust.TRUST_POLICY_HARD_LIMIT:
        raise SettingsError(
            f"crosscloud:extraPrincipalIds: {count} trusted identities make a trust policy of "
            f"about {size} characters; IAM allows at most {trust.TRUST_POLICY_HARD_LIMIT}. "
            "Split the identities across several roles/stacks."
        )
    if size > trust.TRUST_POLICY_DEFAULT_QUOTA:
        pulumi.log.warn(
            f"{count} trusted identities make a trust policy of about {size} characters, over "
            f"IAM's default quota of {trust.TRUST_POLICY_DEFAULT_QUOTA}: request the 'Role trust "
            f"policy length' increase (up to {trust.TRUST_POLICY_HARD_LIMIT}) in Service Quotas "
            "before `pulumi up`."
        )
