"""AWS in the local cloud: moto over HTTPS, in auth mode, behind the STS front.

The STS front (`sts_front`) checks what AWS STS checks before moto sees an
AssumeRoleWithWebIdentity; `seed_aws` leaves IAM and S3 as `pulumi up` does.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from unittest.mock import patch

from moto.sts.responses import TokenResponse

from localcloud.certs import TlsFiles
from localcloud.moto_server import WEB_IDENTITY, MotoServer
from localcloud.sts_verifier import OidcProvider, WebIdentityVerifier
from localcloud.world import World

OTHER_BUCKET = "localcloud-not-granted"
"""A bucket the role's policy does not name, holding the same objects: reading it must fail."""
_ADMIN_USER = "localcloud-admin"
_OPERATOR_USER = "localcloud-operator"

_MOTO_STS_AUTH = TokenResponse._authenticate_and_authorize_normal_action


def _unsigned_web_identity(self: TokenResponse, resource: str = "*") -> None:
    # AWS takes AssumeRoleWithWebIdentity unsigned: the token is the proof, and the STS front has
    # checked it before moto sees the request. moto's auth mode would demand a SigV4 signature.
    if self._get_action() == WEB_IDENTITY:
        return
    _MOTO_STS_AUTH(self, resource)


class CloudMoto(MotoServer):
    """`MotoServer` (over HTTPS in the cloud) whose auth mode lets AssumeRoleWithWebIdentity in
    unsigned, and which leaves moto's process-wide state as it found it."""

    def __init__(self, tls: TlsFiles, **kwargs: Any) -> None:
        super().__init__(tls=tls, **kwargs)
        self._web_identity_patch = patch.object(
            TokenResponse, "_authenticate_and_authorize_normal_action", _unsigned_web_identity
        )
        self._patched = False

    def start(self) -> CloudMoto:
        self._web_identity_patch.start()
        self._patched = True
        return super().start()

    def stop(self) -> None:
        try:
            if self._server:
                # moto's state is process-wide: leave it as found for whoever runs next.
                self.disable_auth()
                self.reset()
        finally:
            super().stop()
            if self._patched:
                self._web_identity_patch.stop()
                self._patched = False


def sts_front(
    world: World, jwks_url: str, ca_cert: Path, neighbours: Iterable[World] = ()
) -> WebIdentityVerifier:
    """What AWS STS checks, configured from the program: its OIDC providers (keys from the fake
    Entra's JWKS) and its role's trust policy (and those of neighbouring environments, which
    share the providers: one per issuer URL in the account)."""
    worlds = [world, *neighbours]
    providers = {p.url: p for w in worlds for p in w.oidc_providers}
    return WebIdentityVerifier(
        [
            OidcProvider(url=p.url, arn=p.arn, client_ids=p.client_ids, jwks_url=jwks_url)
            for p in providers.values()
        ],
        {w.role_arn: w.trust_policy for w in worlds},
        ssl_context=ssl.create_default_context(cafile=str(ca_cert)),
    )


def seed_aws(aws: CloudMoto, world: World, worlds: Sequence[World]) -> dict[str, str]:
    """IAM and S3 as `pulumi up` leaves them for `world` and its neighbours (`worlds`, `world`
    first), then auth on (moto then enforces policies). Returns the operator's moto keys
    (iam:GetRole on the role only), for `make verify`."""
    iam = aws.client("iam")
    # An administrator with real moto keys, so the cloud can still change IAM once auth is on.
    iam.create_user(UserName=_ADMIN_USER)
    iam.put_user_policy(
        UserName=_ADMIN_USER,
        PolicyName="administrator",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName=_ADMIN_USER)["AccessKey"]
    aws.use_keys(key["AccessKeyId"], key["SecretAccessKey"])
    # The operator's own AWS sign-in for `make verify`: it may read the role, nothing more.
    iam.create_user(UserName=_OPERATOR_USER)
    iam.put_user_policy(
        UserName=_OPERATOR_USER,
        PolicyName="read-the-role",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "iam:GetRole", "Resource": world.role_arn}
                ],
            }
        ),
    )
    operator = iam.create_access_key(UserName=_OPERATOR_USER)["AccessKey"]
    operator_keys = {
        "AWS_ACCESS_KEY_ID": operator["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": operator["SecretAccessKey"],
    }

    # Environments on one foundation share its provider: IAM holds one per URL.
    providers = {p.arn: p for w in worlds for p in w.oidc_providers}
    for provider in providers.values():
        arn = iam.create_open_id_connect_provider(
            Url=provider.url, ClientIDList=list(provider.client_ids), ThumbprintList=[]
        )["OpenIDConnectProviderArn"]
        same_as_program("OIDC provider ARN", arn, provider.arn)
    for each in worlds:
        role = iam.create_role(
            RoleName=each.role_name,
            AssumeRolePolicyDocument=each.trust_policy,
            MaxSessionDuration=each.role_max_session_seconds,
        )["Role"]
        same_as_program("role ARN", role["Arn"], each.role_arn)
        iam.put_role_policy(
            RoleName=each.role_name,
            PolicyName=each.read_policy_name,
            PolicyDocument=each.read_policy,
        )
    s3 = aws.client("s3")
    location = (
        {"CreateBucketConfiguration": {"LocationConstraint": world.region}}
        if world.region != "us-east-1"
        else {}
    )
    buckets = {w.bucket: w for w in worlds} | {OTHER_BUCKET: world}
    for bucket, owner in buckets.items():
        s3.create_bucket(Bucket=bucket, **location)
        for key_name, path in owner.s3_objects.items():
            s3.put_object(
                Bucket=bucket,
                Key=key_name,
                Body=path.read_bytes(),
                ContentType=owner.s3_content_types[key_name],
            )
    aws.enable_auth()
    return operator_keys


def same_as_program(what: str, actual: str, expected: str) -> None:
    """Fail loudly if moto named something differently from the program (a wrong ARN would make
    every later check compare the wrong thing)."""
    if actual != expected:
        raise RuntimeError(f"local {what} {actual!r} differs from the program's {expected!r}")
