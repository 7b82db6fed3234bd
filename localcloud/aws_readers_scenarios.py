"""The AWS readers' demo rows: what happens when an AWS workload reads Azure (and when it may not).

Each row calls the real code: the Lambda handler from its package (localcloud/lambda_host.py), or
the SDKs themselves (botocore's `get_web_identity_token`, azure-identity's
`ClientAssertionCredential`, azure-storage-blob) where a row needs a token the Lambda never asks
for. Every row checks what happened, not only the status.
"""

from __future__ import annotations

import hashlib
import logging
import re
import socket
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.session
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import ClientAssertionCredential
from azure.storage.blob import BlobServiceClient, ContainerClient
from botocore.config import Config
from botocore.exceptions import ClientError

from localcloud.aws_readers_local import AwsReadersLocal

ENTRA_AUDIENCE = "api://AzureADTokenExchange"
HOST_STAND_IN = "host-stand-in"
"""A container the reader identity has no role on, standing in for the host storage account
(the local cloud emulates one storage account)."""


@dataclass(frozen=True)
class Row:
    who: str
    what: str
    expected: str
    got: str
    problem: str | None
    hint: str = ""

    @property
    def met(self) -> bool:
        return self.problem is None


def _sts(readers: AwsReadersLocal, session: str) -> Any:
    creds = readers.sessions[session]
    client = botocore.session.Session().create_client(
        "sts",
        region_name=readers.sts.region,
        endpoint_url=readers.sts.endpoint_url,
        verify=str(readers.cloud.tls.ca_cert),
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        aws_session_token=creds.session_token,
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=3, read_timeout=5),
    )
    return client


def _token(readers: AwsReadersLocal, session: str, audience: str, algorithm: str) -> str:
    return _sts(readers, session).get_web_identity_token(
        Audience=[audience], SigningAlgorithm=algorithm, DurationSeconds=300
    )["WebIdentityToken"]


def _credential(
    readers: AwsReadersLocal, assertion: Callable[[], str], client_id: str = ""
) -> ClientAssertionCredential:
    return ClientAssertionCredential(
        readers.cloud.entra.tenant_id,
        client_id or readers.spec.client_id,
        assertion,
        authority=readers.entra.authority,
        connection_verify=str(readers.cloud.tls.ca_cert),
        retry_total=0,
    )


def _entra_refusal(readers: AwsReadersLocal, token: str, client_id: str = "") -> str:
    """Entra's AADSTS code for `token`, or "issued". azure-identity logs each failed get_token
    as a warning (with Entra's text, no token); the demo shows the code in its table instead."""
    quiet = logging.getLogger("azure.identity")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        _credential(readers, lambda: token, client_id).get_token(
            "https://storage.azure.com/.default"
        )
    except ClientAuthenticationError as exc:
        match = re.search(r"AADSTS\d+", str(exc.message))
        return match.group(0) if match else str(exc.message)[:80]
    finally:
        quiet.setLevel(level)
    return "issued"


def _aadsts(message: str) -> str:
    match = re.search(r"AADSTS\d+", message)
    return match.group(0) if match else ""


def run(readers: AwsReadersLocal, expected_blobs: dict[str, bytes]) -> list[Row]:
    rows: list[Row] = []
    lambda_host, other_host = readers.hosts["lambda"], readers.hosts["other"]
    role = readers.spec.role_arn

    def sts_calls() -> int:
        return readers.sts.calls[role]

    # 1-3: the Lambda lists and reads; warm requests make no STS and no Entra call.
    calls, issued = sts_calls(), readers.entra.requests["issued"]
    started = time.perf_counter()
    listed = lambda_host.invoke({"action": "list"}).get("answer", {})
    cold_ms = f"{(time.perf_counter() - started) * 1000:.0f}"
    blobs = sorted(listed.get("azure", {}).get("blobs", []))
    rows.append(
        Row(
            "Lambda role",
            "list (cold)",
            "200, program's blobs",
            f"{listed.get('status')} {len(blobs)} blobs, {cold_ms} ms",
            None
            if listed.get("status") == 200
            and blobs == sorted(expected_blobs)
            and sts_calls() - calls == 1
            and readers.entra.requests["issued"] - issued == 1
            else f"answer {listed}",
        )
    )
    name = sorted(expected_blobs)[0]
    calls, issued = sts_calls(), readers.entra.requests["issued"]
    read = lambda_host.invoke({"action": "read", "name": name}).get("answer", {})
    digest = read.get("azure", {}).get("sha256")
    started = time.perf_counter()
    again = lambda_host.invoke({"action": "list"}).get("answer", {})
    warm_ms = f"{(time.perf_counter() - started) * 1000:.0f}"
    warm = (sts_calls() - calls, readers.entra.requests["issued"] - issued)
    rows.append(
        Row(
            "Lambda role",
            "read + list (warm)",
            "200, 0 STS, 0 Entra",
            f"{read.get('status')}/{again.get('status')}, {warm[0]} STS {warm[1]} Entra, "
            f"{warm_ms} ms",
            None
            if read.get("status") == 200
            and again.get("status") == 200
            and digest == hashlib.sha256(expected_blobs[name]).hexdigest()
            and warm == (0, 0)
            else f"answers {read} {again}, calls {warm}",
        )
    )

    # 4: another role of the account, same permissions, same package: not the subject.
    other = other_host.invoke({"action": "list"}).get("answer", {})
    error = other.get("error", {})
    rows.append(
        Row(
            "other role",
            "list, same package",
            "502 AADSTS700213",
            f"{other.get('status')} {_aadsts(error.get('message', ''))} (hint below)",
            None
            if other.get("status") == 502
            and error.get("code") == "federated_credential_mismatch"
            and "AADSTS700213" in error.get("message", "")
            and "SUBJECT differs" in error.get("hint", "")
            and role in error.get("hint", "")
            and readers.role_arn(readers.OTHER_ROLE) in error.get("hint", "")
            else f"answer {other}",
            error.get("hint", ""),
        )
    )

    # 5: the program's role policy refuses ES384 and other audiences at STS.
    for what, audience, algorithm in (
        ("STS: ES384 token", ENTRA_AUDIENCE, "ES384"),
        ("STS: other audience", "api://someone-else", "RS256"),
    ):
        try:
            _token(readers, "lambda", audience, algorithm)
            got, problem = "token issued", "the role policy should have refused"
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            got, problem = code, None if code == "AccessDenied" else f"got {code}"
        rows.append(Row("Lambda role", what, "AccessDenied", got, problem))

    # 6: tokens Entra refuses for an identity that trusts the loose role: ES384 (algorithm) and
    # another audience (the credential's issuer and subject match, its audience does not).
    for what, audience, algorithm, code in (
        ("Entra: ES384 token", ENTRA_AUDIENCE, "ES384", "AADSTS5002738"),
        ("Entra: other audience", "api://someone-else", "RS256", "AADSTS700212"),
    ):
        message = _entra_refusal(
            readers,
            _token(readers, "loose", audience, algorithm),
            readers.loose_identity.client_id,
        )
        rows.append(
            Row(
                "loose role",
                what,
                code,
                message.split(":")[0] if message else "",
                None if code in message else f"got {message[:120]}",
            )
        )

    # 7: the reader identity holds its role on the data container only.
    rows.append(_other_container(readers))
    return rows


def _other_container(readers: AwsReadersLocal) -> Row:
    cloud = readers.cloud
    deployer = cloud.operator.system_identity
    token, expires_on = cloud.entra.issue_token(deployer, "https://storage.azure.com")

    class Issued:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken(token, expires_on)

    with BlobServiceClient(
        cloud.gate.endpoint, credential=Issued(), connection_verify=str(cloud.tls.ca_cert)
    ) as service:
        container = service.get_container_client(HOST_STAND_IN)
        if not container.exists():
            container.create_container()
            container.upload_blob("host.json", b"{}")
    credential = _credential(readers, lambda: _token(readers, "lambda", ENTRA_AUDIENCE, "RS256"))
    with ContainerClient(
        cloud.gate.endpoint,
        HOST_STAND_IN,
        credential=credential,
        connection_verify=str(cloud.tls.ca_cert),
        retry_total=0,
    ) as client:
        try:
            names = list(client.list_blob_names())
            got, problem = f"listed {len(names)}", "the reader identity read another container"
        except HttpResponseError as exc:
            code = str(exc.error_code or exc.status_code)
            got = f"{exc.status_code} {code}"
            problem = None if exc.status_code == 403 else f"got {got}"
    return Row("reader id", "list host account", "403", got, problem)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def table(rows: list[Row]) -> str:
    header = ("", "who", "what", "expected", "got")
    cells = [header] + [("ok" if r.met else "FAIL", r.who, r.what, r.expected, r.got) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def part(cloud: Any, blobs: dict[str, bytes]) -> tuple[int, int]:
    """The AWS readers' rows on a running LocalCloud, printed: (rows met, rows)."""
    with AwsReadersLocal(cloud) as readers:
        print()
        print(
            textwrap.fill(
                "AWS readers (crosscloud:awsReaders): the Lambda's package in an isolated "
                f"interpreter; issuer {readers.issuer}; subject {readers.spec.subject}",
                100,
                subsequent_indent="  ",
            ),
            end="\n\n",
            flush=True,
        )
        rows = run(readers, blobs)
        ports = [readers.sts.port, readers.entra.port, readers.api.port]
        hosts = list(readers.hosts.values())
    left = [f"port {port}" for port in ports if _listening(port)]
    left += [f"Lambda host {host.name}" for host in hosts if host.running]
    rows.append(
        Row(
            "local cloud",
            "stop fakes + hosts",
            "nothing running",
            ", ".join(left) or f"{len(ports)} ports closed, {len(hosts)} hosts ended",
            f"still running: {left}" if left else None,
        )
    )
    print(table(rows))
    for row in rows:
        for label, text in ((row.who, row.hint), (f"FAIL {row.what}", row.problem or "")):
            if text:
                print()
                print(
                    textwrap.fill(
                        f"{label}: {text}", 100, initial_indent="  ", subsequent_indent="    "
                    )
                )
    return sum(r.met for r in rows), len(rows)
