"""`make verify` for AWS readers: invoke the deployed Lambda with the operator's AWS credentials.

Through the Lambda API with IAM (`lambda:InvokeFunction`, the function has no URL): `list` must
name exactly the blobs of sample_data/azure, and `read` of each must return its sha256. The
operator's credentials are the ambient ones boto3 finds (profile, SSO, environment); nothing is
stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from verify.checks import SAMPLE_DATA, Check

NAME = "AWS Lambda reads the data container with its IAM role only"
LAMBDA_TIMEOUT_SECONDS = 30
"""The function's timeout (components/aws_readers.py; a test keeps the two equal)."""
INIT_MARGIN_SECONDS = 10
"""A cold start's init phase, at most 10 s for on-demand functions (AWS Lambda developer guide,
execution environment lifecycle), comes before the invocation's own timeout."""
INVOKE_READ_TIMEOUT_SECONDS = LAMBDA_TIMEOUT_SECONDS + INIT_MARGIN_SECONDS + 5
"""A synchronous Invoke answers only when the function ends: wait longer than it may run, so a
slow (not failed) invocation is not cut off by the client."""


def lambda_client(region: str, timeout: float) -> Any:
    """Invoke client: connect within `timeout` (at most 5 s), read for longer than the function
    may run, and one attempt only: after a read timeout a retry would invoke the function a
    second time (botocore's default is 60 s read, 3 attempts in standard mode)."""
    return boto3.session.Session().client(
        "lambda",
        region_name=region,
        config=Config(
            connect_timeout=min(5.0, timeout),
            read_timeout=INVOKE_READ_TIMEOUT_SECONDS,
            retries={"mode": "standard", "total_max_attempts": 1},
        ),
    )


def _invoke(client: Any, function: str, event: Mapping[str, Any]) -> dict[str, Any]:
    answer = client.invoke(
        FunctionName=function,
        InvocationType="RequestResponse",
        Payload=json.dumps(event).encode(),
    )
    body = json.loads(answer["Payload"].read(4 * 1024 * 1024) or b"null")
    if answer.get("FunctionError") or not isinstance(body, dict):
        raise ValueError(f"the function failed ({answer.get('FunctionError')}): {str(body)[:200]}")
    return body


def lambda_reads_samples(
    outputs: Mapping[str, Any], timeout: float, client: Any | None = None
) -> Check:
    """Invoke `awsReaderFunctionName`: list, then read every sample, compared by sha256."""
    function = str(outputs["awsReaderFunctionName"])
    client = client or lambda_client(str(outputs["awsRegion"]), timeout)
    samples = {p.name: p for p in sorted((SAMPLE_DATA / "azure").iterdir()) if p.is_file()}
    try:
        listed = _invoke(client, function, {"action": "list"})
        if listed.get("status") != 200:
            error = listed.get("error", {})
            return Check(NAME, False, f"list: {error.get('code')}: {error.get('hint')}")
        names = sorted(listed.get("azure", {}).get("blobs", []))
        if names != sorted(samples):
            return Check(
                NAME, False, f"list named {names}, sample_data/azure has {sorted(samples)}"
            )
        for name, path in samples.items():
            read = _invoke(client, function, {"action": "read", "name": name})
            digest = read.get("azure", {}).get("sha256")
            if read.get("status") != 200 or digest != hashlib.sha256(path.read_bytes()).hexdigest():
                return Check(NAME, False, f"read {name}: {read.get('status')} {read.get('error')}")
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        why = (
            " (the operator needs lambda:InvokeFunction)" if code == "AccessDeniedException" else ""
        )
        return Check(NAME, False, f"Lambda API: {code}{why}")
    except (BotoCoreError, ValueError) as error:
        return Check(NAME, False, f"{type(error).__name__}: {str(error)[:200]}")
    return Check(NAME, True, f"{function}: listed and read {len(samples)} blobs, sha256 equal")
