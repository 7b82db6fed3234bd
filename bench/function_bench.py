"""The function against the loopback fakes, with latency injected at the fakes.

Injected per request: 20 ms at the MI token endpoint, 150 ms at STS AssumeRoleWithWebIdentity,
40 ms at Blob (in the gate in front of Azurite), 60 ms at S3 (in moto's middleware). Calls are
counted at the fakes.

- warm_*_calls_per_request: token / STS requests the fakes received during 50 warm /api/read
  requests, divided by 50 (the seed pays 1 + 1 per request).
- seed_style_latency_ms: median of a baseline that works like the seed: per request a fresh
  credential fetches a token, STS is called, then S3 and Blob are read one after the other.
- ours_latency_ms: median warm /api/read through the registered function.
- latency_ratio = seed-style / ours.
- parallel_read_ratio = sequential / ours, where "sequential" reads Blob then S3 with the same
  warm clients: what reading both clouds costs without the thread pool.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
from azure.core.credentials import AccessToken
from azure.identity import ManagedIdentityCredential
from azure.storage.blob import BlobServiceClient, ContainerClient
from botocore import UNSIGNED
from botocore.config import Config

from components import trust
from localcloud.azurite import Azurite
from localcloud.blob_gate import BlobGate
from localcloud.certs import TlsFiles, make_tls_files
from localcloud.entra import STORAGE_RESOURCE, FakeEntra
from localcloud.moto_server import MotoServer

FUNCTION_SRC = Path(__file__).resolve().parent.parent / "function_src"
TOKEN_LATENCY = 0.020
STS_LATENCY = 0.150
BLOB_LATENCY = 0.040
S3_LATENCY = 0.060
WARM_REQUESTS = 50
SAMPLES = 20
REGION = "eu-west-1"
BUCKET = "crosscloud-bench"
CONTAINER = "mycontainer"
OBJECT = "bench/sample.txt"


@dataclass
class Fakes:
    entra: FakeEntra
    aws: MotoServer
    gate: BlobGate
    audience: str
    role_arn: str
    client_id: str
    deployer: ContainerClient
    """The container, as the deployer (Storage Blob Data Contributor): for benches' own data."""
    tls: TlsFiles | None = None
    """The local CA and server certificate the fakes use (for benches' own fakes)."""

    def reset_counts(self) -> None:
        self.entra.reset_counts()
        self.aws.reset_counts()
        self.gate.reset_counts()

    def inject_latency(self) -> None:
        self.entra.latency = TOKEN_LATENCY
        self.aws.sts_latency = STS_LATENCY
        self.aws.s3_latency = S3_LATENCY
        self.gate.latency = BLOB_LATENCY


class _Static:
    def __init__(self, token: str, expires_on: int) -> None:
        self._token = AccessToken(token, expires_on)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return self._token


@contextmanager
def fakes() -> Iterator[Fakes]:
    """Entra, moto and Azurite behind the gate, seeded, with the function's env pointed at them."""
    with tempfile.TemporaryDirectory(prefix="crosscloud-bench-") as tmp, ExitStack() as stack:
        tls = make_tls_files(Path(tmp))
        entra = stack.enter_context(FakeEntra())
        uami, deployer = entra.new_identity("uami"), entra.new_identity("deployer")
        host = entra.add_host("crosscloud-bench", user_identities=[uami])
        audience = trust.tenant_audience(entra.tenant_id)
        entra.add_federation_app(audience, assigned=[uami.principal_id])
        # Over TLS: the function refuses an http endpoint that would receive tokens.
        aws = stack.enter_context(MotoServer(region=REGION, tls=tls))
        azurite = stack.enter_context(Azurite(tls))
        gate = stack.enter_context(
            BlobGate(
                azurite.blob_endpoint,
                tls,
                jwks=entra.jwks(),
                readers={uami.principal_id},
                contributors={deployer.principal_id},
            )
        )
        token, expires_on = entra.issue_token(deployer, STORAGE_RESOURCE)
        blob = stack.enter_context(
            BlobServiceClient(
                gate.endpoint,
                credential=_Static(token, expires_on),
                connection_verify=str(tls.ca_cert),
            )
        )
        container = blob.create_container(CONTAINER)
        container.upload_blob(OBJECT, b"azure side of the bench\n")
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket=BUCKET, Key=OBJECT, Body=b"aws side of the bench\n")
        role_arn = aws.client("iam").create_role(
            RoleName="crosscloud-bench",
            AssumeRolePolicyDocument=json.dumps(
                trust.trust_policy(
                    f"arn:aws:iam::123456789012:oidc-provider/sts.windows.net/{entra.tenant_id}/",
                    entra.tenant_id,
                    audience,
                    [uami.principal_id],
                )
            ),
        )["Role"]["Arn"]
        # Restored on exit: a later bench (or the package build's pip) must not inherit a CA
        # bundle that no longer exists.
        with mock.patch.dict(
            os.environ,
            {
                **host.env(),
                **aws.env(),
                "REQUESTS_CA_BUNDLE": str(tls.ca_cert),
                "AWS_CA_BUNDLE": str(tls.ca_cert),
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "WEBSITE_SITE_NAME": "crosscloud-bench",
                "CROSSCLOUD_IDENTITY_CLIENT_ID": uami.client_id,
                "CROSSCLOUD_AUDIENCE": audience,
                "CROSSCLOUD_AWS_ROLE_ARN": role_arn,
                "CROSSCLOUD_AWS_REGION": REGION,
                "CROSSCLOUD_S3_BUCKET": BUCKET,
                "CROSSCLOUD_BLOB_ACCOUNT_URL": gate.endpoint,
                "CROSSCLOUD_BLOB_CONTAINER": CONTAINER,
            },
        ):
            yield Fakes(entra, aws, gate, audience, role_arn, uami.client_id, container, tls)


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def seed_style_read(f: Fakes) -> None:
    """What the seed did per request: new credential, new token, STS, then each store in turn."""
    credential = ManagedIdentityCredential(client_id=f.client_id)
    token = credential.get_token(f"{f.audience}/.default").token
    sts = boto3.client("sts", region_name=REGION, config=Config(signature_version=UNSIGNED))
    keys = sts.assume_role_with_web_identity(
        RoleArn=f.role_arn, RoleSessionName="seed-style", WebIdentityToken=token
    )["Credentials"]
    s3 = boto3.client(
        "s3",
        region_name=REGION,
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
    )
    s3.get_object(Bucket=BUCKET, Key=OBJECT)["Body"].read()
    container = ContainerClient(
        os.environ["CROSSCLOUD_BLOB_ACCOUNT_URL"], CONTAINER, credential=credential
    )
    container.download_blob(OBJECT).readall()
    container.close()
    credential.close()


@functools.cache
def route_handlers() -> dict[str, Callable[..., Any]]:
    """The app's HTTP functions by route. Cached: azure-functions builds the function list anew
    on each `get_functions()` and refuses the second build's names as duplicates, so every bench
    in one process must share the first."""
    if str(FUNCTION_SRC) not in sys.path:
        sys.path.insert(0, str(FUNCTION_SRC))
    import function_app

    return {
        fn.get_trigger().route: fn.get_user_function() for fn in function_app.app.get_functions()
    }


def run() -> dict[str, float]:
    with fakes() as f:
        import azure.functions as func

        handler = route_handlers()["read"]  # puts function_src on the path, as the host does
        from crosscloud_fn import service

        request = func.HttpRequest(
            "GET", "https://fn.local/api/read", params={"name": OBJECT}, body=b""
        )

        def ours() -> None:
            response = handler(request)
            if response.status_code != 200:
                raise RuntimeError(f"/api/read answered {response.status_code}")

        f.inject_latency()
        service.replace(None)
        ours()  # cold: one token per audience and one STS call
        f.reset_counts()
        warm = [timed(ours) for _ in range(WARM_REQUESTS)]
        token_calls, sts_calls = f.entra.token_requests, f.aws.web_identity_calls

        runtime = service.current()
        sequential = [
            timed(lambda: (runtime.blob.read(OBJECT), runtime.s3.read(OBJECT)))
            for _ in range(SAMPLES)
        ]
        seed_style = [timed(lambda: seed_style_read(f)) for _ in range(SAMPLES)]
        service.replace(None)

    ours_ms = statistics.median(warm)
    seed_ms = statistics.median(seed_style)
    return {
        "warm_token_calls_per_request": token_calls / WARM_REQUESTS,
        "warm_sts_calls_per_request": sts_calls / WARM_REQUESTS,
        "seed_style_latency_ms": seed_ms,
        "ours_latency_ms": ours_ms,
        "latency_ratio": seed_ms / ours_ms,
        "parallel_read_ratio": statistics.median(sequential) / ours_ms,
    }
