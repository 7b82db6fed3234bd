"""Map what the clouds answer to `{"error": {"code", "message", "hint"}}` with the right status.

The hint is the point: a cross-cloud trust chain fails in a handful of well-known ways, and the
refusal a caller sees should name the likely cause (which assignment, which trust-policy key,
which role) instead of a stack trace. Messages pass through `redact` as a last line of defence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from crosscloud_fn.names import BadName
from crosscloud_fn.redaction import redact
from crosscloud_fn.settings import Settings, SettingsError

STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
WEB_IDENTITY_OPERATION = "AssumeRoleWithWebIdentity"


class CrossCloudError(Exception):
    """An error with everything the HTTP answer needs; safe to show to the caller."""

    def __init__(self, status: int, code: str, message: str, hint: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = redact(message)
        self.hint = hint

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "hint": self.hint}}


ClaimsLookup = Callable[[], Mapping[str, Any] | None]
"""Returns the federation token's claims if they can be had without a new failure, else None."""


def bad_name(exc: BadName) -> CrossCloudError:
    return CrossCloudError(
        400,
        "bad_name",
        str(exc),
        "Ask for a plain object name: 1-1024 bytes, no control characters, no backslash, "
        "no '.' or '..' path segments.",
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


def _identity_error(
    exc: ClientAuthenticationError, settings: Settings, purpose: str
) -> CrossCloudError:
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
        "identity_unavailable",
        f"The managed identity could not get a token for {purpose}: {text}",
        f"Check that {who} is enabled on this app"
        + (
            " and attached to it (CROSSCLOUD_IDENTITY_CLIENT_ID must be its client id)."
            if settings.user_assigned
            else " (or set CROSSCLOUD_IDENTITY_CLIENT_ID to use a user-assigned identity)."
        ),
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
        # The token loader behind botocore's refresh failed: Entra did not give a token.
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
                _sts_hint(settings, _safe(claims)),
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
        if code in ("AccessDenied", "403", "AllAccessDisabled") or status == 403:
            return CrossCloudError(
                502,
                "s3_access_denied",
                f"AWS S3: {code}: {message}",
                f"The role {settings.aws_role_arn} was assumed but its permission policy does not "
                f"allow this: it needs s3:ListBucket on arn:aws:s3:::{settings.s3_bucket} and "
                f"s3:GetObject on arn:aws:s3:::{settings.s3_bucket}/* (without s3:ListBucket, S3 "
                "answers 403 instead of 404 for a missing key).",
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
    if isinstance(exc, BotoCoreError):
        return CrossCloudError(
            502,
            "aws_unreachable",
            f"AWS: {type(exc).__name__}: {exc}",
            f"Could not reach AWS in {settings.aws_region}: check outbound network access "
            "(and AWS_ENDPOINT_URL / AWS_CA_BUNDLE if they are set).",
        )
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        # Raised by the identity endpoint's transport inside the token loader.
        return _identity_error(ClientAuthenticationError(message=str(exc)), settings, "AWS")
    raise exc


def from_azure(exc: Exception, settings: Settings, name: str | None) -> CrossCloudError:
    """Map an exception raised while using Blob Storage (token acquisition included)."""
    if isinstance(exc, CrossCloudError):
        return exc
    response = getattr(exc, "response", None)
    if isinstance(exc, ClientAuthenticationError) and response is None:
        return _identity_error(exc, settings, "Azure Storage")
    if isinstance(exc, HttpResponseError) and response is not None:
        status = exc.status_code
        raw_code = getattr(exc, "error_code", None)  # a StorageErrorCode enum or a plain str
        code = str(getattr(raw_code, "value", raw_code) or "")
        summary = (exc.message or "").splitlines()[0] if exc.message else code
        where = f"{settings.blob_account_url}/{settings.blob_container}"
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
        return CrossCloudError(
            502,
            "azure_unreachable",
            f"Azure: {type(exc).__name__}: {exc}",
            "Could not reach Azure Storage or the identity endpoint: check "
            "CROSSCLOUD_BLOB_ACCOUNT_URL and outbound network access.",
        )
    raise exc


def _safe(claims: ClaimsLookup) -> Mapping[str, Any] | None:
    try:
        return claims()
    except Exception:
        return None
