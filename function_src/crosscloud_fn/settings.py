"""App settings -> one validated, immutable `Settings` (docs/design.md "The function's contract").

Everything comes from the environment the platform controls, never from the request: the seed
let an anonymous caller choose the role ARN and the audience (a confused deputy).
"""

from __future__ import annotations

import os
import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

IDENTITY_CLIENT_ID = "CROSSCLOUD_IDENTITY_CLIENT_ID"
AUDIENCE = "CROSSCLOUD_AUDIENCE"
AWS_ROLE_ARN = "CROSSCLOUD_AWS_ROLE_ARN"
AWS_REGION = "CROSSCLOUD_AWS_REGION"
S3_BUCKET = "CROSSCLOUD_S3_BUCKET"
BLOB_ACCOUNT_URL = "CROSSCLOUD_BLOB_ACCOUNT_URL"
BLOB_CONTAINER = "CROSSCLOUD_BLOB_CONTAINER"
# Optional: set when the IAM role may only read keys under a prefix (crosscloud:s3KeyPrefix);
# the listing must then ask for that prefix or S3 refuses it.
S3_KEY_PREFIX = "CROSSCLOUD_S3_KEY_PREFIX"
# Set by App Service on every app; only used to make the STS session name meaningful in CloudTrail.
SITE_NAME = "WEBSITE_SITE_NAME"
# Optional time limits (seconds). The defaults suit production; tests set small values.
REQUEST_BUDGET = "CROSSCLOUD_REQUEST_BUDGET_SECONDS"
CALL_TIMEOUT = "CROSSCLOUD_CALL_TIMEOUT_SECONDS"
OUTAGE_COOLDOWN = "CROSSCLOUD_OUTAGE_COOLDOWN_SECONDS"
# The front door (crosscloud_fn/caller_auth.py reads these): who may call the routes.
TENANT_ID = "CROSSCLOUD_TENANT_ID"
CALLER_AUDIENCE = "CROSSCLOUD_CALLER_AUDIENCE"
CALLER_CLIENT_ID = "CROSSCLOUD_CALLER_CLIENT_ID"
CALLER_ROLE = "CROSSCLOUD_CALLER_ROLE"
CALLER_KEYS_REFRESH = "CROSSCLOUD_CALLER_KEYS_REFRESH_SECONDS"
# host.json's functionTimeout: past it the host cuts the invocation off with a bare 500.
FUNCTION_TIMEOUT_SECONDS = 60

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONTAINER = re.compile(r"^(\$root|[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})$")
_AUDIENCE = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$", re.IGNORECASE)
# IAM's RoleSessionName rule; botocore does not check it, STS would refuse it at the first call.
_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")


class SettingsError(ValueError):
    """An app setting is missing or malformed; `setting` names it for the error hint."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


# Standard variables that point an SDK at an endpoint which receives a credential: the web
# identity token goes to STS, the session token (and signatures) to S3. botocore reads the
# service-specific ones before AWS_ENDPOINT_URL (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html).
TOKEN_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_S3")
# App Service's identity endpoint is http by design and never leaves the host: loopback on
# Windows (http://127.0.0.1:41741/MSI/token/, as in Azure/ms-rest-nodeauth#88), a link-local
# address of the container's host on Linux (169.254.0.0/16, not routable, RFC 3927).
# https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference
IDENTITY_ENDPOINT = "IDENTITY_ENDPOINT"
_HOST_LOCAL = re.compile(r"^(localhost|127(\.\d{1,3}){3}|169\.254(\.\d{1,3}){2}|\[::1\])$")


def check_token_endpoints(env: Mapping[str, str]) -> None:
    """Refuse to run if a token would travel in clear: every endpoint that receives one must be
    https, except the identity endpoint, which may be http on loopback only."""
    for name in TOKEN_ENDPOINT_VARIABLES:
        value = (env.get(name) or "").strip()
        if value and not value.lower().startswith("https://"):
            raise SettingsError(name, f"{value!r} must be an https:// URL (it receives tokens)")
    identity = (env.get(IDENTITY_ENDPOINT) or "").strip()
    if identity and not identity.lower().startswith("https://"):
        rest = identity.split("://", 1)[1] if "://" in identity else ""
        host = rest.split("/", 1)[0].rsplit(":", 1)[0].lower() if rest else ""
        if not identity.lower().startswith("http://") or not _HOST_LOCAL.match(host):
            raise SettingsError(
                IDENTITY_ENDPOINT,
                f"{identity!r} must be https://, or http:// on a loopback or link-local host "
                "(App Service's own endpoint)",
            )


def validate_key_prefix(value: str) -> str:
    """Return `value` if it is "" or a plain folder: `a/b/`, as crosscloud:s3KeyPrefix allows.

    The role's grant is `bucket/{prefix}*` and names are read as `{prefix}{name}`, so without
    the trailing slash `reports` would reach `reports-confidential/...` (issue 10 item 6); the
    other rules mirror components/settings.py `_key_prefix`, which sets this app setting.
    """
    if value == "":
        return value
    if not value.endswith("/"):
        raise SettingsError(S3_KEY_PREFIX, f"{value!r} must be a folder ending with '/'")
    if len(value.encode("utf-8")) > 512:
        raise SettingsError(S3_KEY_PREFIX, "must be at most 512 bytes of UTF-8")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        raise SettingsError(S3_KEY_PREFIX, "must not contain control or format characters")
    segments = value[:-1].split("/")
    if any(s in ("", ".", "..") or s != s.strip() for s in segments):
        raise SettingsError(
            S3_KEY_PREFIX,
            f"{value!r} must not start with '/' nor hold empty, '.', '..' or space-padded segments",
        )
    return value


def validate_role_session_name(name: str) -> str:
    """Return `name` if STS would accept it as RoleSessionName (2-64 chars of [\\w+=,.@-])."""
    if not _SESSION_NAME.fullmatch(name):
        raise SettingsError("RoleSessionName", f"{name!r} is not 2-64 characters of [\\w+=,.@-]")
    return name


def role_session_name(site_name: str | None, user_assigned: bool) -> str:
    """`crosscloud-{app}-{sami|uami}`: CloudTrail shows which app and identity assumed the role."""
    site = re.sub(r"[^\w+=,.@-]+", "-", site_name or "function").strip("-") or "function"
    suffix = "-uami" if user_assigned else "-sami"
    return validate_role_session_name(f"crosscloud-{site}"[: 64 - len(suffix)] + suffix)


@dataclass(frozen=True)
class Limits:
    """How long one request may take and how long each dependency call may wait (seconds)."""

    budget: float = 25.0
    """Time from a request's start to its answer; past it the answer is a JSON 504 naming the
    dependency still being waited for. Well under functionTimeout (60 s), where the host would
    answer a bare 500 instead."""
    call_timeout: float = 5.0
    """Read timeout of one attempt at one dependency call (identity endpoint, STS, S3, Blob).
    Every client makes at most two attempts, so a stuck call frees its worker (and any lock it
    holds, e.g. botocore's credential refresh lock) well within the budget."""
    outage_cooldown: float = 2.0
    """After the identity endpoint or STS failed with an outage (5xx, throttling, timeout), how
    long further requests fail fast with `*_unavailable` instead of calling it again."""

    @property
    def hedge(self) -> float:
        """How long a request waits for another request's token request or STS exchange before
        one request (one only) makes a second call, in case the first is stuck on a bad
        connection: either takes well under a second when healthy."""
        return min(1.0, self.budget / 5)

    @property
    def call_deadline(self) -> float:
        """Total time one dependency call may take, connecting and every read included: two
        attempts and a backoff of up to 1 s. A peer that drips its answer is cut off then."""
        return 2 * self.call_timeout + 1

    @property
    def connect_timeout(self) -> float:
        """Connecting is quick or never: a shorter wait than for an answer."""
        return min(3.0, self.call_timeout)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Limits:
        def seconds(name: str, default: float, upper: float) -> float:
            raw = (env.get(name) or "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise SettingsError(name, f"{raw!r} is not a number of seconds") from None
            if not 0 < value <= upper:
                raise SettingsError(name, f"must be more than 0 and at most {upper:g} seconds")
            return value

        # Leave the host time to send the 504 before functionTimeout.
        budget = seconds(REQUEST_BUDGET, cls.budget, FUNCTION_TIMEOUT_SECONDS - 10)
        call_timeout = seconds(
            CALL_TIMEOUT, min(cls.call_timeout, budget), FUNCTION_TIMEOUT_SECONDS - 10
        )
        cooldown = seconds(OUTAGE_COOLDOWN, cls.outage_cooldown, 300)
        return cls(budget=budget, call_timeout=call_timeout, outage_cooldown=cooldown)


@dataclass(frozen=True)
class Settings:
    identity_client_id: str | None
    """Client id of the user-assigned identity; None means the system-assigned one."""
    audience: str
    """The federation app's identifier URI: `aud` of the token sent to STS."""
    aws_role_arn: str
    aws_region: str
    s3_bucket: str
    blob_account_url: str
    blob_container: str
    role_session_name: str
    s3_key_prefix: str = ""
    """Names map to keys under this prefix (empty: the whole bucket)."""
    limits: Limits = Limits()
    """Time budget per request and timeouts per dependency call."""

    @property
    def user_assigned(self) -> bool:
        return self.identity_client_id is not None

    @property
    def federation_scope(self) -> str:
        return f"{self.audience}/.default"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def required(name: str) -> str:
            value = (env.get(name) or "").strip()
            if not value:
                raise SettingsError(name, "is not set")
            return value

        def matching(name: str, pattern: re.Pattern[str], what: str) -> str:
            value = required(name)
            if not pattern.fullmatch(value):
                raise SettingsError(name, f"{value!r} is not {what}")
            return value

        client_id = (env.get(IDENTITY_CLIENT_ID) or "").strip() or None
        if client_id is not None:
            try:
                uuid.UUID(client_id)
            except ValueError:
                raise SettingsError(
                    IDENTITY_CLIENT_ID, "is not a client id (GUID); leave it empty for the SAMI"
                ) from None
        audience = matching(AUDIENCE, _AUDIENCE, "an identifier URI such as api://...")
        if audience.endswith("/.default"):
            raise SettingsError(AUDIENCE, "is the identifier URI without the /.default suffix")
        account_url = required(BLOB_ACCOUNT_URL).rstrip("/")
        if not account_url.lower().startswith("https://"):
            # Bearer tokens are only ever sent over TLS (the SDK refuses otherwise, too).
            raise SettingsError(BLOB_ACCOUNT_URL, "must be an https:// URL")
        check_token_endpoints(env)
        return cls(
            identity_client_id=client_id,
            audience=audience,
            aws_role_arn=matching(AWS_ROLE_ARN, _ROLE_ARN, "an IAM role ARN"),
            aws_region=matching(AWS_REGION, _REGION, "an AWS region such as eu-west-1"),
            s3_bucket=matching(S3_BUCKET, _BUCKET, "an S3 bucket name"),
            blob_account_url=account_url,
            blob_container=matching(BLOB_CONTAINER, _CONTAINER, "a blob container name"),
            role_session_name=role_session_name(env.get(SITE_NAME), client_id is not None),
            s3_key_prefix=validate_key_prefix(env.get(S3_KEY_PREFIX) or ""),
            limits=Limits.from_env(env),
        )
