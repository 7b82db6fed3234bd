"""Map what the clouds answer to `{"error": {"code", "message", "hint"}}` with the right status.

The hint is the point: a cross-cloud trust chain fails in a handful of well-known ways, and the
refusal a caller sees should name the likely cause (which assignment, which trust-policy key,
which role) instead of a stack trace. Messages pass through `redact` as a last line of defence.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import (
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.parsers import ResponseParserError

from crosscloud_fn.credentials import REJECTED_SESSION_CODES
from crosscloud_fn.dependencies import BLOB, DESCRIPTIONS, IDENTITY, S3, STS, Unavailable
from crosscloud_fn.names import BadName
from crosscloud_fn.redaction import redact
from crosscloud_fn.settings import Settings, SettingsError

STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
WEB_IDENTITY_OPERATION = "AssumeRoleWithWebIdentity"
log = logging.getLogger("crosscloud")
# Where the managed identity endpoint may live; never named to a caller.
_IDENTITY_ENDPOINT_VARIABLES = ("IDENTITY_ENDPOINT", "MSI_ENDPOINT", "IMDS_ENDPOINT")
_IMDS = "169.254.169.254"
# A host:port as requests/urllib3 spell it in connection errors.
_HOST_PORT = re.compile(r"host='[^']*',\s*port=\d+")
_S3_OUTAGE_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "503", "500"}
)
_BLOB_OUTAGE_CODES = frozenset({"ServerBusy", "InternalError", "OperationTimedOut"})


def _without_internal_addresses(text: str) -> str:
    """`text` with the identity endpoint's URL and host:port (and any requests-style
    host/port pair) replaced: a caller must not learn the platform's internal addresses."""
    for variable in _IDENTITY_ENDPOINT_VARIABLES:
        endpoint = os.environ.get(variable, "")
        netloc = urlsplit(endpoint).netloc if "://" in endpoint else ""
        for secret in (endpoint, netloc):
            if secret:
                text = text.replace(secret, "[identity endpoint]")
    return _HOST_PORT.sub("[address]", text.replace(_IMDS, "[identity endpoint]"))


class CrossCloudError(Exception):
    """An error with everything the HTTP answer needs; safe to show to the caller."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        hint: str,
        retry_after: float | None = None,
        challenge: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = _without_internal_addresses(redact(message))
        self.hint = hint
        self.retry_after = None if retry_after is None else max(1, math.ceil(retry_after))
        """Seconds for the `Retry-After` header of a 503 or 504 (RFC 9110 section 10.2.3)."""
        self.challenge = challenge
        """The `WWW-Authenticate` header of a 401 or 403 (RFC 6750 section 3)."""

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "hint": self.hint}}

    def headers(self) -> dict[str, str]:
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        if self.challenge is not None:
            headers["WWW-Authenticate"] = self.challenge
        return headers


ClaimsLookup = Callable[[], Mapping[str, Any] | None]
"""Returns the federation token's claims if they can be had without a new failure, else None."""


def bad_name(exc: BadName) -> CrossCloudError:
    return CrossCloudError(
        400,
        "bad_name",
        str(exc),
        "Ask for a plain object name: 1-1024 bytes, no control characters, no backslash, "
        "no leading '/', no empty, '.' or '..' path segments.",
    )


def misconfigured(exc: SettingsError) -> CrossCloudError:
    return CrossCloudError(
        500,
        "misconfigured",
        f"App setting {exc.setting} {exc.problem}.",
        f"Set {exc.setting} in the function app's settings (the Pulumi program sets all of them).",
    )


def not_found(cloud: str, where: str, name: str) -> CrossCloudError:
    return CrossCloudError(
        404,
        "not_found",
        f"{cloud}: no object named {name!r} in {where}.",
        "Check the name with GET /api/list; names are case-sensitive and must exist in both "
        "stores.",
    )


def too_large(cloud: str, name: str, size: int, limit: int) -> CrossCloudError:
    return CrossCloudError(
        413,
        "too_large",
        f"{cloud}: object {name!r} is {size} bytes; this function returns objects up to {limit}.",
        "Read large objects with the storage SDKs directly; this endpoint is a demonstration read.",
    )


def internal() -> CrossCloudError:
    return CrossCloudError(
        500,
        "internal",
        "Unexpected error; details are in the function's log.",
        "Look up the invocation in Application Insights; nothing about it is shown to callers.",
    )


def unavailable(exc: Unavailable, settings: Settings) -> CrossCloudError:
    """503 for an outage: what was unavailable and why, never the underlying error text."""
    log.warning("%s unavailable (%s): %s", exc.dependency, exc.reason, exc.detail)
    where = {
        IDENTITY: "the managed identity endpoint",
        STS: f"AWS STS in {settings.aws_region}",
        S3: f"Amazon S3 (bucket {settings.s3_bucket})",
        BLOB: f"Azure Blob Storage ({settings.blob_account_url})",
    }[exc.dependency]
    retry_after = max(1, math.ceil(exc.retry_after))
    return CrossCloudError(
        503,
        f"{exc.dependency}_unavailable",
        f"{DESCRIPTIONS[exc.dependency]} is unavailable: {exc.reason}.",
        f"{where} is down, throttling or slow; this is not a permission problem. Retry later "
        f"(after {retry_after} s, as the Retry-After header says); the function's log has the "
        "details.",
        retry_after,
    )


def timeout(
    budget: float,
    waiting: list[str | None],
    also: list[CrossCloudError],
    retry_after: float = 2.0,
) -> CrossCloudError:
    """504: the request's time budget ran out while waiting on `waiting` (None: not started)."""
    slow = [DESCRIPTIONS[d] for d in dict.fromkeys(w for w in waiting if w)]
    if slow:
        what = f"still waiting for {' and '.join(slow)}"
        hint = (
            f"{' and '.join(slow)} answered too slowly; it is likely degraded. Retry later; "
            "if it persists, check that service's health and this app's outbound network."
        )
    else:
        what = "the work was still queued behind other requests' calls"
        hint = "The function is saturated by slow calls; retry later."
    message = f"No answer within the request's time budget of {budget:g} s: {what}."
    for other in also[:1]:
        message += f" Also {other.code}: {other.message}"
    log.warning("request budget of %g s exceeded: %s", budget, what)
    return CrossCloudError(504, "timeout", message, hint, retry_after)


def _identity_error(
    exc: ClientAuthenticationError, settings: Settings, purpose: str
) -> CrossCloudError:
    if isinstance(exc, Unavailable):
        return unavailable(exc, settings)
    text = str(exc.message if hasattr(exc, "message") else exc)
    who = (
        f"the user-assigned identity {settings.identity_client_id}"
        if settings.user_assigned
        else "the function app's system-assigned identity"
    )
    if "AADSTS501051" in text:
        return CrossCloudError(
            502,
            "identity_not_assigned",
            f"Entra refused a token for {settings.audience}: {text}",
            f"Assign the federation app's app role (AssumeAWSRole) to {who}: the app at "
            f"{settings.audience} requires assignment, and this identity has no app-role "
            "assignment on it.",
        )
    if "AADSTS500011" in text:
        return CrossCloudError(
            502,
            "audience_not_found",
            f"Entra knows no application at {settings.audience}: {text}",
            "CROSSCLOUD_AUDIENCE must be the federation app's identifier URI exactly "
            "(e.g. api://{tenantId}/AWS-Federation-App or api://{appId}).",
        )
    return CrossCloudError(
        502,
        "identity_refused",
        f"The managed identity could not get a token for {purpose}: {text}",
        f"Check that {who} is enabled on this app"
        + (
            " and attached to it (CROSSCLOUD_IDENTITY_CLIENT_ID must be its client id)."
            if settings.user_assigned
            else " (or set CROSSCLOUD_IDENTITY_CLIENT_ID to use a user-assigned identity)."
        ),
    )


_EXPIRED_WEB_IDENTITY_HINT = (
    "AWS STS found the identity's Entra token already expired: this is about time, not trust. "
    "Check this host's clock (STS compares exp with AWS's time) and that the token was not held "
    "past its expiry; the tenant, audience and trust policy are not the cause."
)


def _sts_hint(settings: Settings, claims: Mapping[str, Any] | None) -> str:
    if claims:
        facts = (
            f"this token has aud={claims.get('aud')!r}, iss={claims.get('iss')!r}, "
            f"sub={claims.get('sub')!r}"
        )
    else:
        facts = f"the token's aud is {settings.audience!r}"
    return (
        f"AWS STS refused the identity's token for {settings.aws_role_arn}: {facts}. The IAM OIDC "
        "provider URL must equal iss (with the trailing slash) and list aud as a client id, and "
        "the role's trust policy must allow sts:AssumeRoleWithWebIdentity with StringEquals on "
        "':aud' = this audience and ':sub' including this identity's principal id."
    )


def from_aws(
    exc: Exception, settings: Settings, claims: ClaimsLookup, name: str | None
) -> CrossCloudError:
    """Map an exception raised while using S3 (credential refresh included)."""
    if isinstance(exc, CrossCloudError):
        return exc
    if isinstance(exc, ClientAuthenticationError):
        # The token loader behind botocore's refresh failed (or an outage wrapper gave up).
        return _identity_error(exc, settings, f"AWS ({settings.audience})")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")) or code
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if exc.operation_name == WEB_IDENTITY_OPERATION:
            # Raised from inside botocore's credential refresh: STS refused the exchange.
            return CrossCloudError(
                502,
                "sts_refused",
                f"AWS STS: {code}: {message}",
                _EXPIRED_WEB_IDENTITY_HINT
                if code in ("ExpiredTokenException", "ExpiredToken")
                else _sts_hint(settings, _safe(claims)),
            )
        if code in _S3_OUTAGE_CODES or (status or 0) >= 500 or status == 429:
            return unavailable(
                Unavailable(S3, f"{code or 'HTTP'} ({status})", f"{code}: {message}", 1), settings
            )
        if code in ("NoSuchKey", "404") or (status == 404 and code != "NoSuchBucket"):
            return not_found("AWS", f"s3://{settings.s3_bucket}", name or "")
        if code == "NoSuchBucket":
            return CrossCloudError(
                502,
                "s3_bucket_missing",
                f"AWS S3: bucket {settings.s3_bucket} does not exist.",
                "CROSSCLOUD_S3_BUCKET must name the bucket the Pulumi program created.",
            )
        refreshed = getattr(exc, "after_refresh", False)
        if refreshed and code in REJECTED_SESSION_CODES:
            return CrossCloudError(
                502,
                "aws_credentials_rejected",
                f"AWS S3: {code}: {message} (also with credentials fetched from STS just now)",
                "S3 rejects the role's session even when it is brand new: "
                + (
                    "this host's clock is more than 15 minutes off AWS's time (S3 refuses "
                    "signatures dated that far off); fix the clock, the credentials are fine."
                    if code == "RequestTimeTooSkewed"
                    else "S3 considers the brand-new session expired, so this host's clock is "
                    "off (botocore dates each request with it) or the role's maximum session "
                    "duration is shorter than an hour; nothing in the trust setup causes this."
                    if code == "ExpiredToken"
                    else "check that AWS_ENDPOINT_URL (if set) points S3 and STS at the same "
                    "partition, and that the STS regional endpoint for "
                    f"{settings.aws_region} is active in the account (IAM > Account settings)."
                ),
            )
        if code in ("AccessDenied", "403", "AllAccessDisabled") or status == 403:
            return CrossCloudError(
                502,
                "s3_access_denied",
                f"AWS S3: {code}: {message}",
                f"The role {settings.aws_role_arn} was assumed but its permission policy does not "
                f"allow this: it needs s3:ListBucket on arn:aws:s3:::{settings.s3_bucket} and "
                f"s3:GetObject on arn:aws:s3:::{settings.s3_bucket}/* (without s3:ListBucket, S3 "
                "answers 403 instead of 404 for a missing key)"
                + (
                    ". Fresh credentials from STS were denied too, so this is not a revoked "
                    "session."
                    if refreshed
                    else "."
                ),
            )
        return CrossCloudError(
            502, "aws_error", f"AWS: {code}: {message}", "AWS refused the request; see the code."
        )
    if isinstance(exc, NoCredentialsError):
        return CrossCloudError(
            502,
            "sts_refused",
            "AWS: no credentials were obtained from STS.",
            _sts_hint(settings, _safe(claims)),
        )
    if isinstance(exc, BotoCoreError | ResponseParserError):
        # Network errors of STS are turned into Unavailable(sts) where it is called: this is S3.
        reason = "no answer in time" if "timeout" in type(exc).__name__.lower() else "no connection"
        return unavailable(Unavailable(S3, reason, f"{type(exc).__name__}: {exc}", 1), settings)
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return unavailable(
            Unavailable(IDENTITY, "no answer", f"{type(exc).__name__}: {exc}", 1), settings
        )
    raise exc


def from_azure(exc: Exception, settings: Settings, name: str | None) -> CrossCloudError:
    """Map an exception raised while using Blob Storage (token acquisition included)."""
    if isinstance(exc, CrossCloudError):
        return exc
    response = getattr(exc, "response", None)
    if isinstance(exc, ClientAuthenticationError) and response is None:
        return _identity_error(exc, settings, "Azure Storage")
    if isinstance(exc, DecodeError):
        # A 2xx answer that is not what Storage sends (an HTML page from a proxy or a login
        # portal, a body cut short): a malformed answer of the service, not a refusal.
        return unavailable(
            Unavailable(
                BLOB,
                "its answer could not be read as Blob Storage's",
                f"{type(exc).__name__}: {exc}",
                1,
            ),
            settings,
        )
    if isinstance(exc, HttpResponseError) and response is not None:
        status = exc.status_code
        raw_code = getattr(exc, "error_code", None)  # a StorageErrorCode enum or a plain str
        code = str(getattr(raw_code, "value", raw_code) or "")
        summary = (exc.message or "").splitlines()[0] if exc.message else code
        where = f"{settings.blob_account_url}/{settings.blob_container}"
        if code in _BLOB_OUTAGE_CODES or (status or 0) >= 500 or status == 429:
            return unavailable(
                Unavailable(BLOB, f"{code or 'HTTP'} ({status})", f"{code}: {summary}", 1),
                settings,
            )
        if code == "BlobNotFound" or (status == 404 and code not in ("ContainerNotFound",)):
            return not_found("Azure", f"container {settings.blob_container}", name or "")
        if code == "ContainerNotFound":
            return CrossCloudError(
                502,
                "blob_container_missing",
                f"Azure Storage: container {settings.blob_container} does not exist.",
                "CROSSCLOUD_BLOB_CONTAINER must name the container the Pulumi program created.",
            )
        if status == 401 or code in ("AuthenticationFailed", "InvalidAuthenticationInfo"):
            return CrossCloudError(
                502,
                "blob_authentication_failed",
                f"Azure Storage: {code}: {summary}",
                "Storage did not accept the identity's token (issuer/audience/tenant): "
                "CROSSCLOUD_BLOB_ACCOUNT_URL must be an account in the identity's tenant.",
            )
        if status == 403:
            return CrossCloudError(
                502,
                "blob_access_denied",
                f"Azure Storage: {code or status}: {summary}",
                "The identity authenticated but is not authorised: grant it the role Storage "
                f"Blob Data Reader ({STORAGE_BLOB_DATA_READER}) on {where} or its storage "
                "account (role assignments take a few minutes to apply).",
            )
        return CrossCloudError(
            502,
            "azure_error",
            f"Azure Storage: {status} {code}: {summary}",
            "Azure Storage refused the request; see the code.",
        )
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        reason = "no answer in time" if "Timeout" in type(exc).__name__ else "no connection"
        return unavailable(Unavailable(BLOB, reason, f"{type(exc).__name__}: {exc}", 1), settings)
    raise exc


def _safe(claims: ClaimsLookup) -> Mapping[str, Any] | None:
    try:
        return claims()
    except Exception:
        return None


# ---- the front door (crosscloud_fn/caller_auth.py) ----------------------------------------------
# Each carries its headers (`CrossCloudError.headers`): RFC 6750 section 3 challenges,
# Retry-After on 503.

_CALLER_HINT = (
    "Send Authorization: Bearer <access token for this API>: a person runs "
    "`az account get-access-token --resource <callerAudience>`; an app or managed identity asks "
    "for `<callerAudience>/.default`. A function key is not accepted (docs/callers.md)."
)


def unauthenticated(problem: str | None) -> CrossCloudError:
    """401: no usable bearer token (`problem` None) or a token that failed the check named."""
    if problem is None:
        return CrossCloudError(
            401,
            "unauthenticated",
            "No access token in the Authorization header.",
            _CALLER_HINT,
            challenge="Bearer",
        )
    return CrossCloudError(
        401,
        "unauthenticated",
        f"The access token was refused: {problem}.",
        _CALLER_HINT,
        challenge='Bearer error="invalid_token"',
    )


def forbidden(role: str, oid: str | None) -> CrossCloudError:
    """403: a valid token whose caller does not hold the reader API's app role."""
    return CrossCloudError(
        403,
        "forbidden",
        f"The caller {oid or '(no oid)'} does not hold the app role {role}.",
        f"Add the caller's object id {oid or ''} to crosscloud:callerPrincipalIds (the stack "
        f"assigns it {role} on the reader API), run pulumi up, then get a new token.",
        # RFC 6750 section 3.1: a token without the privileges the request needs is 403 with
        # error="insufficient_scope" in the challenge.
        challenge='Bearer error="insufficient_scope"',
    )


def caller_keys_unavailable(reason: str, retry_after: float) -> CrossCloudError:
    """503: the tenant's signing keys could not be fetched and none are cached."""
    log.warning("caller signing keys unavailable: %s", reason)
    return CrossCloudError(
        503,
        "caller_keys_unavailable",
        "The tenant's token signing keys could not be fetched, so no caller can be checked.",
        "Entra's keys endpoint (or this app's outbound network) is down; this is not a "
        f"permission problem. Retry later (in about {max(retry_after, 1):.0f} s).",
        retry_after,
    )
