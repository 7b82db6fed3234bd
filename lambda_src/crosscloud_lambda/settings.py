"""The Lambda's settings: its environment variables, read and checked once per process.

Set by the Pulumi program (components/aws_readers.py); never taken from an event (an invoker must
not choose the identity, the container or the audience).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

ENTRA_AUDIENCE = "api://AzureADTokenExchange"
"""The `aud` Entra requires in an external token for a federated identity credential
(https://learn.microsoft.com/en-us/graph/api/resources/federatedidentitycredential: "should be
set to api://AzureADTokenExchange for Microsoft Entra ID")."""
SIGNING_ALGORITHM = "RS256"
"""Entra accepts RS256 only; ES384 tokens are refused with AADSTS5002738 (docs/aws-readers.md)."""
TOKEN_DURATION_MIN, TOKEN_DURATION_MAX = 60, 900
"""STS accepts 60-3600 s (botocore sts model, GetWebIdentityToken DurationSeconds); the token is
only an assertion exchanged at once, and the role's policy caps `sts:DurationSeconds` at 900."""
DEFAULT_TOKEN_DURATION = 300
_CALL_TIMEOUT_MAX = 30.0
_ACCOUNT_URL = re.compile(r"https://[A-Za-z0-9.:-]+(/[A-Za-z0-9._/-]*)?")
_CONTAINER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")


class SettingsError(ValueError):
    """A variable is missing or malformed; the message names it (no secret is ever among them)."""


@dataclass(frozen=True)
class LambdaSettings:
    tenant_id: str
    """CROSSCLOUD_TENANT_ID: the Entra tenant of the reader identity."""
    reader_client_id: str
    """CROSSCLOUD_READER_CLIENT_ID: client id of the user-assigned identity for AWS readers."""
    blob_account_url: str
    """CROSSCLOUD_BLOB_ACCOUNT_URL: the data account's blob endpoint."""
    blob_container: str
    """CROSSCLOUD_BLOB_CONTAINER: the one container the identity may read."""
    aws_region: str
    """AWS_REGION (set by Lambda): the regional STS endpoint; the global one refuses
    GetWebIdentityToken."""
    expected_issuer: str = ""
    """CROSSCLOUD_EXPECTED_ISSUER: the account's issuer, as the federated credential holds it
    (only for the AADSTS70021 hint)."""
    expected_subject: str = ""
    """CROSSCLOUD_EXPECTED_SUBJECT: the role ARN, as the federated credential holds it (hint)."""
    token_duration: int = DEFAULT_TOKEN_DURATION
    """CROSSCLOUD_TOKEN_DURATION_SECONDS: lifetime asked for the AWS token (60-900)."""
    call_timeout: float = 5.0
    """CROSSCLOUD_CALL_TIMEOUT_SECONDS: read timeout of one attempt at STS, Entra or Blob."""

    @property
    def connect_timeout(self) -> float:
        return min(3.0, self.call_timeout)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LambdaSettings:
        env = os.environ if env is None else env

        def required(name: str) -> str:
            value = (env.get(name) or "").strip()
            if not value:
                raise SettingsError(f"{name} is not set")
            return value

        tenant_id = _uuid("CROSSCLOUD_TENANT_ID", required("CROSSCLOUD_TENANT_ID"))
        client_id = _uuid("CROSSCLOUD_READER_CLIENT_ID", required("CROSSCLOUD_READER_CLIENT_ID"))
        account_url = required("CROSSCLOUD_BLOB_ACCOUNT_URL").rstrip("/")
        if not _ACCOUNT_URL.fullmatch(account_url) or urlsplit(account_url).query:
            raise SettingsError(
                "CROSSCLOUD_BLOB_ACCOUNT_URL must be an https:// blob endpoint, "
                f"got {account_url!r}"
            )
        container = required("CROSSCLOUD_BLOB_CONTAINER")
        if not _CONTAINER.fullmatch(container):
            raise SettingsError(
                f"CROSSCLOUD_BLOB_CONTAINER {container!r} is not a container name "
                "(3-63 of a-z, 0-9 and single '-')"
            )
        region = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip()
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region):
            raise SettingsError(f"AWS_REGION must name a region (regional STS), got {region!r}")
        duration = _number(
            env,
            "CROSSCLOUD_TOKEN_DURATION_SECONDS",
            DEFAULT_TOKEN_DURATION,
            TOKEN_DURATION_MIN,
            TOKEN_DURATION_MAX,
        )
        timeout = _number(env, "CROSSCLOUD_CALL_TIMEOUT_SECONDS", 5.0, 0.5, _CALL_TIMEOUT_MAX)
        return cls(
            tenant_id=tenant_id,
            reader_client_id=client_id,
            blob_account_url=account_url,
            blob_container=container,
            aws_region=region,
            expected_issuer=(env.get("CROSSCLOUD_EXPECTED_ISSUER") or "").strip(),
            expected_subject=(env.get("CROSSCLOUD_EXPECTED_SUBJECT") or "").strip(),
            token_duration=int(duration),
            call_timeout=float(timeout),
        )


def _uuid(name: str, value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise SettingsError(f"{name} must be a GUID, got {value!r}") from None


def _number(env: Mapping[str, str], name: str, default: float, lower: float, upper: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not lower <= value <= upper:
        raise SettingsError(f"{name} must be between {lower:g} and {upper:g}, got {raw!r}")
    return value
