"""The assertion: the execution role's own JWT from STS `GetWebIdentityToken`.

`ClientAssertionCredential(tenant_id, client_id, func)` calls `func` every time it needs a new
Entra token (azure-identity docs), and only then: its MSAL cache serves the storage token to warm
invocations, so a warm request costs no STS and no Entra call.

The STS call (botocore >= 1.41; operation shape from botocore's sts model: `Audience` list of 1-10,
`SigningAlgorithm` RS256 | ES384, `DurationSeconds` 60-3600, answer `WebIdentityToken` +
`Expiration`) goes to the REGIONAL endpoint: "The GetWebIdentityToken API is not available on the
STS Global endpoint"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_providers_outbound_getting_started.html).
Its `sub` is the calling role's ARN (SubjectMode AWSIdentity, the default), which is what the
federated credential's `subject` must equal.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.config import Config

from crosscloud_lambda.aws_services import STS
from crosscloud_lambda.settings import ENTRA_AUDIENCE, SIGNING_ALGORITHM, LambdaSettings

CLAIMS_SHOWN = ("iss", "sub", "aud", "exp")
"""Claims of the AWS token that a hint may name: who it says the caller is, never the token."""


@dataclass(frozen=True)
class Presented:
    """What the last assertion said (non-secret claims and header algorithm), for hints."""

    algorithm: str
    claims: dict[str, Any]


def sts_client(settings: LambdaSettings) -> Any:
    """A botocore STS client for the Lambda's region, with bounded timeouts and attempts.

    `sts_regional_endpoints` is forced to `regional`: botocore 1.44 defaults to it
    (botocore/args.py `_get_sts_regional_endpoints_config`), but AWS_STS_REGIONAL_ENDPOINTS=legacy
    in the environment would send us-east-1 and other legacy regions to the global endpoint,
    which refuses this call. Credentials are the Lambda's role session (its environment).
    """
    session = botocore.session.Session()
    session.set_config_variable("sts_regional_endpoints", "regional")
    config = Config(
        region_name=settings.aws_region,
        retries={"mode": "standard", "total_max_attempts": 2},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.call_timeout,
        user_agent_extra="crosscloud-lambda",
    )
    return session.create_client(STS, region_name=settings.aws_region, config=config)


class WebIdentityAssertion:
    """`func` for ClientAssertionCredential: a fresh AWS token per call, counted."""

    def __init__(self, client: Any, duration: int, algorithm: str = SIGNING_ALGORITHM) -> None:
        self.client = client
        self.duration = duration
        self.algorithm = algorithm
        self._lock = threading.Lock()
        self.calls = 0
        """GetWebIdentityToken calls made (the warm-path figure: 0 per warm request)."""
        self.last: Presented | None = None

    def __call__(self) -> str:
        with self._lock:
            self.calls += 1
        answer = self.client.get_web_identity_token(
            Audience=[ENTRA_AUDIENCE],
            SigningAlgorithm=self.algorithm,
            DurationSeconds=self.duration,
        )
        token = answer["WebIdentityToken"]
        self.last = presented(token)
        return token


def presented(token: str) -> Presented:
    """The header algorithm and the shown claims of `token`, decoded without verifying (we are
    its holder, not its audience); an unreadable token gives empty values."""
    try:
        header_b64, payload_b64 = token.split(".")[:2]
        header = json.loads(_b64(header_b64))
        payload = json.loads(_b64(payload_b64))
    except (ValueError, IndexError):
        return Presented("", {})
    claims = {name: payload[name] for name in CLAIMS_SHOWN if name in payload}
    return Presented(str(header.get("alg", "")), claims)


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
