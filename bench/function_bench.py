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
- auth_overhead_ratio = warm /api/read with the front door checking the caller's Entra token /
  the same read with a guard that admits without checking, alternated in the same run, with no
  injected latency (issue 16 goal: within 10%); keys_fetches_per_request: key-set fetches the
  fake Entra received during the warm requests, per request (goal 0: the keys are cached per
  process); caller_check_us: one check of a token the guard admitted before (hash + lookup +
  expiry); caller_verify_us: the full check of a token (parse, RS256 signature, claims).
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
AUTH_PAIRS = 200
"""Alternated warm reads with and without the caller check: the check costs ~0.15 ms of a
~13 ms read, so the medians need more samples than the other figures to rise above the noise."""
SAMPLES = 20
QUICK_WARM_REQUESTS = 10
QUICK_SAMPLES = 5
"""`python -m bench --quick` (CI): the same requests, fewer of them."""
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
    caller_token: str = ""
    """An assigned caller's access token for the reader API (the front door's audience)."""
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
        caller = entra.new_identity("caller")
        caller_audience = trust.tenant_audience(entra.tenant_id, "crosscloud-bench-reader-api")
        reader_api = entra.add_federation_app(
            caller_audience,
            "reader-api",
            app_role="CrossCloud.Read",
            assigned=[caller.principal_id],
        )
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
                "AZURE_AUTHORITY_HOST": entra.base_url,
                "CROSSCLOUD_TENANT_ID": entra.tenant_id,
                "CROSSCLOUD_CALLER_AUDIENCE": caller_audience,
                "CROSSCLOUD_CALLER_CLIENT_ID": reader_api.app_id,
            },
        ):
            yield Fakes(
                entra,
                aws,
                gate,
                audience,
                role_arn,
                uami.client_id,
                container,
                entra.issue_caller_token(caller, caller_audience),
                tls,
            )


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


def run(quick: bool = False) -> dict[str, float]:
    warm_requests = QUICK_WARM_REQUESTS if quick else WARM_REQUESTS
    samples = QUICK_SAMPLES if quick else SAMPLES
    with fakes() as f:
        import azure.functions as func

        handler = route_handlers()["read"]  # puts function_src on the path, as the host does
        from crosscloud_fn import caller_auth, service

        request = func.HttpRequest(
            "GET",
            "https://fn.local/api/read",
            params={"name": OBJECT},
            headers={"Authorization": f"Bearer {f.caller_token}"},
            body=b"",
        )

        def ours() -> None:
            response = handler(request)
            if response.status_code != 200:
                raise RuntimeError(f"/api/read answered {response.status_code}")

        f.inject_latency()
        service.replace(None)
        caller_auth.replace(None)
        ours()  # cold: one token per audience and one STS call, and the caller keys
        f.reset_counts()
        warm = [timed(ours) for _ in range(warm_requests)]
        token_calls, sts_calls = f.entra.token_requests, f.aws.web_identity_calls
        keys_fetches = f.entra.keys_requests

        runtime = service.current()
        sequential = [
            timed(lambda: (runtime.blob.read(OBJECT), runtime.s3.read(OBJECT)))
            for _ in range(samples)
        ]
        seed_style = [timed(lambda: seed_style_read(f)) for _ in range(samples)]
        # Without injected latency, so the check's cost is not lost in the clouds' 60 ms.
        f.entra.latency = f.aws.sts_latency = f.aws.s3_latency = f.gate.latency = 0.0
        with_auth, without_auth = auth_overhead(caller_auth, ours)
        guard = caller_auth.current()
        check_us = [
            timed(lambda: guard.check(request.headers.get("Authorization"))) * 1e3
            for _ in range(samples * 10)
        ]
        verify_us = [timed(lambda: guard.verify(f.caller_token)) * 1e3 for _ in range(samples * 10)]
        service.replace(None)
        caller_auth.replace(None)  # the next bench has its own fakes, tenant and keys

    ours_ms = statistics.median(warm)
    seed_ms = statistics.median(seed_style)
    return {
        "warm_token_calls_per_request": token_calls / warm_requests,
        "warm_sts_calls_per_request": sts_calls / warm_requests,
        "seed_style_latency_ms": seed_ms,
        "ours_latency_ms": ours_ms,
        "latency_ratio": seed_ms / ours_ms,
        "parallel_read_ratio": statistics.median(sequential) / ours_ms,
        "warm_read_auth_ms": statistics.median(with_auth),
        "warm_read_no_auth_ms": statistics.median(without_auth),
        "auth_overhead_ratio": statistics.median(with_auth) / statistics.median(without_auth),
        "keys_fetches_per_request": keys_fetches / WARM_REQUESTS,
        "caller_check_us": statistics.median(check_us),
        "caller_verify_us": statistics.median(verify_us),
    }


def auth_overhead(caller_auth: Any, read: Callable[[], None]) -> tuple[list[float], list[float]]:
    """Warm reads with the real front door and with one that admits without checking,
    alternated so both see the same conditions (same run, same warm clients)."""
    guard = caller_auth.current()  # warm: keys cached by the reads before

    class AdmitAll:
        """The baseline: what a request costs when nothing checks the caller."""

        def check(self, authorization: str | None) -> Any:
            return caller_auth.Caller(oid=None, appid=None, kind="app", roles=())

    with_auth: list[float] = []
    without_auth: list[float] = []
    for n in range(AUTH_PAIRS):
        # Which goes first alternates too: the first read of a pair is not the second's equal.
        order = ((guard, with_auth), (AdmitAll(), without_auth))
        for chosen, samples in order if n % 2 == 0 else reversed(order):
            caller_auth.replace(chosen)
            samples.append(timed(read))
    caller_auth.replace(guard)
    return with_auth, without_auth
