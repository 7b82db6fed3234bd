"""On the local cloud (moto enforcing the role's policy), the read policy the program writes for
`crosscloud:s3KeyPrefix: reports/` lets the deployed function read under `reports/` and not
`reports-confidential/payroll.csv`."""

from __future__ import annotations

import json

from components import trust
from components.settings import parse_settings
from localcloud.cloud import LocalCloud

OWN, SIBLING = "reports/q1.csv", "reports-confidential/payroll.csv"


def test_the_function_reads_the_folder_and_not_its_sibling(cloud: LocalCloud) -> None:
    world = cloud.world
    prefix = parse_settings({"s3KeyPrefix": "reports/"}).s3_key_prefix
    iam, s3 = cloud.aws.client("iam"), cloud.aws.client("s3")  # the cloud's administrator
    for key in (OWN, SIBLING):
        s3.put_object(Bucket=world.bucket, Key=key, Body=key.encode())
    iam.put_role_policy(
        RoleName=world.role_name,
        PolicyName=world.read_policy_name,
        PolicyDocument=json.dumps(trust.s3_read_policy(world.bucket, prefix, partition="aws")),
    )
    try:
        # The app's names are keys (its own CROSSCLOUD_S3_KEY_PREFIX is empty here); neither
        # object is in Azure, so a read S3 allows answers Azure's 404, one S3 refuses a 502.
        own = cloud.call("uami", "read", {"name": OWN})
        sibling = cloud.call("uami", "read", {"name": SIBLING})
    finally:
        iam.put_role_policy(
            RoleName=world.role_name,
            PolicyName=world.read_policy_name,
            PolicyDocument=world.read_policy,
        )
        for key in (OWN, SIBLING):
            s3.delete_object(Bucket=world.bucket, Key=key)
    assert own.status == 404, own.body
    assert (sibling.status, sibling.body["error"]["code"]) == (502, "s3_access_denied")
    assert "AccessDenied" in sibling.body["error"]["message"]
