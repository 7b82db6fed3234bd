"""`crosscloud:s3KeyPrefix` is a folder: the role's read policy, as moto's IAM enforcement
evaluates it, grants keys under `reports/` and not `reports-confidential/payroll.csv`."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from components import trust
from components.settings import SettingsError, parse_settings
from tests.function.conftest import BUCKET, REGION, World

PREFIXED_ROLE = "crosscloud-reports-reader"


def test_a_prefix_without_its_slash_is_refused_before_any_policy() -> None:
    with pytest.raises(SettingsError, match=r"crosscloud:s3KeyPrefix = 'reports'.*'reports/'"):
        parse_settings({"s3KeyPrefix": "reports"})
    with pytest.raises(ValueError, match="must end with '/'"):
        trust.s3_read_policy(BUCKET, "reports", partition="aws")


OWN, SIBLING = "reports/q1.csv", "reports-confidential/payroll.csv"


def reads_under_moto_auth(world: World, policy: dict) -> dict[str, bool]:
    """Which of OWN and SIBLING a role with `policy` may GetObject, with IAM enforced."""
    iam, s3 = world.aws.client("iam"), world.aws.client("s3")
    for key in (OWN, SIBLING):
        s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    trust_anyone = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    role_arn = iam.create_role(
        RoleName=PREFIXED_ROLE, AssumeRolePolicyDocument=json.dumps(trust_anyone)
    )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=PREFIXED_ROLE, PolicyName="read", PolicyDocument=json.dumps(policy)
    )
    # Assume with auth off (moto's admin keys), then turn IAM enforcement on for the reads.
    credentials = world.aws.client("sts").assume_role(
        RoleArn=role_arn, RoleSessionName="prefix-test"
    )["Credentials"]
    reader = boto3.session.Session().client(
        "s3",
        region_name=REGION,
        endpoint_url=world.aws.endpoint_url,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        verify=str(world.tls_ca),
    )
    allowed = {}
    world.aws.enable_auth()
    try:
        for key in (OWN, SIBLING):
            try:
                allowed[key] = reader.get_object(Bucket=BUCKET, Key=key)["Body"].read() == (
                    key.encode()
                )
            except ClientError as error:
                assert error.response["Error"]["Code"] == "AccessDenied"
                allowed[key] = False
    finally:
        world.aws.disable_auth()
        iam.delete_role_policy(RoleName=PREFIXED_ROLE, PolicyName="read")
        iam.delete_role(RoleName=PREFIXED_ROLE)
        for key in (OWN, SIBLING):
            s3.delete_object(Bucket=BUCKET, Key=key)
    return allowed


def test_the_prefixed_role_reads_its_folder_and_not_the_sibling(world: World) -> None:
    prefix = parse_settings({"s3KeyPrefix": "reports/"}).s3_key_prefix
    assert reads_under_moto_auth(world, trust.s3_read_policy(BUCKET, prefix, partition="aws")) == {
        OWN: True,
        SIBLING: False,
    }


def test_the_check_above_can_fail_a_prefix_without_slash_grants_the_sibling(
    world: World,
) -> None:
    """What the program produced for `s3KeyPrefix: reports` before it was refused."""
    document = json.loads(
        json.dumps(trust.s3_read_policy(BUCKET, "reports/", partition="aws")).replace(
            "reports/*", "reports*"
        )
    )
    assert reads_under_moto_auth(world, document) == {OWN: True, SIBLING: True}
