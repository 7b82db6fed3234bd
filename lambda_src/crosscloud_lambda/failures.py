"""What went wrong, as `{"error": {"code", "message", "hint"}}`, with the likely cause named.

The trust chain fails in a few well-known ways, each with its own code and hint:

- STS `OutboundWebIdentityFederationDisabledException`: the account's feature is off (botocore sts
  model, GetWebIdentityToken errors);
- STS `AccessDenied`: the role's policy does not allow this audience/algorithm/duration;
- Entra's "No matching federated identity record found for presented assertion" family: the
  token's issuer/subject/audience do not equal a federated credential of the identity exactly,
  or the credential is new (minutes to be honoured). Entra names what differs: `AADSTS700211`
  the issuer (Azure/azure-workload-identity#1200), `AADSTS700212` the audience, `AADSTS700213`
  the subject (Azure/login#482), `AADSTS7002138` the subject, in case only (Azure/login#517,
  case-sensitive matching since 2024); `AADSTS70021` is the older generic form;
- Entra `AADSTS5002738`: the token is not RS256 (Entra refuses ES256/ES384);
- Blob 403: the identity lacks Storage Blob Data Reader on the container.

Messages go through the function's `CrossCloudError` (redaction and no internal addresses).
"""

from __future__ import annotations

import logging
import re

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from botocore.exceptions import BotoCoreError, ClientError
from crosscloud_fn.errors import STORAGE_BLOB_DATA_READER, CrossCloudError, internal

from crosscloud_lambda.settings import ENTRA_AUDIENCE, SIGNING_ALGORITHM, LambdaSettings
from crosscloud_lambda.web_identity import Presented

log = logging.getLogger("crosscloud.lambda")
FEDERATION_DISABLED = "OutboundWebIdentityFederationDisabledException"
_AADSTS = re.compile(r"AADSTS(\d+)")
MISMATCH_FAMILY = "AADSTS70021"
"""Every code of the "no matching federated identity record" family starts with it."""
MISMATCH_DIFFERS = {
    "AADSTS700211": "issuer",
    "AADSTS700212": "audience",
    "AADSTS700213": "subject",
    "AADSTS7002138": "subject case",
}
"""What Entra says differs, by code (AADSTS70021 itself does not say)."""
_STS_OUTAGE = frozenset({"ServiceUnavailable", "InternalFailure", "Throttling", "RequestTimeout"})
_BLOB_OUTAGE = frozenset({"ServerBusy", "InternalError", "OperationTimedOut"})


def from_sts(exc: ClientError | BotoCoreError) -> CrossCloudError:
    """A failed GetWebIdentityToken."""
    if isinstance(exc, BotoCoreError):
        return _unavailable("sts_unavailable", f"AWS STS: {type(exc).__name__}")
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or code)
    if code == FEDERATION_DISABLED:
        return CrossCloudError(
            502,
            "outbound_federation_disabled",
            f"AWS STS: {code}: {message}",
            "IAM outbound web identity federation is off for this AWS account: set "
            "crosscloud:awsOutboundFederation to create (or run `aws iam "
            "enable-outbound-web-identity-federation`) and deploy again.",
        )
    if code in ("AccessDenied", "AccessDeniedException"):
        return CrossCloudError(
            502,
            "web_identity_token_denied",
            f"AWS STS: {code}: {message}",
            "The Lambda's role may call sts:GetWebIdentityToken only for audience "
            f"{ENTRA_AUDIENCE}, algorithm {SIGNING_ALGORITHM} and a bounded duration: check "
            "CROSSCLOUD_TOKEN_DURATION_SECONDS and the role policy the Pulumi program wrote.",
        )
    if (
        code in _STS_OUTAGE
        or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
    ):
        return _unavailable("sts_unavailable", f"AWS STS: {code}")
    return CrossCloudError(
        502, "aws_error", f"AWS STS: {code}: {message}", "AWS STS refused; see the code."
    )


def from_entra(
    exc: ClientAuthenticationError, settings: LambdaSettings, presented: Presented | None
) -> CrossCloudError:
    """Entra refused the assertion (or could not be reached)."""
    text = str(exc.message or exc)
    match = _AADSTS.search(text)
    code = match.group(0) if match else ""
    claims = presented.claims if presented else {}
    if code.startswith(MISMATCH_FAMILY):
        return CrossCloudError(
            502,
            "federated_credential_mismatch",
            f"Entra ID: {_first_line(text)}",
            _mismatch_hint(MISMATCH_DIFFERS.get(code), settings, claims),
        )
    if code == "AADSTS5002738":
        algorithm = presented.algorithm if presented else "?"
        return CrossCloudError(
            502,
            "signing_algorithm_refused",
            f"Entra ID: {_first_line(text)}",
            f"Entra accepts only RS256-signed external tokens; this one was {algorithm}. Ask "
            f"GetWebIdentityToken for SigningAlgorithm={SIGNING_ALGORITHM}.",
        )
    if exc.response is not None and exc.response.status_code >= 500:
        return _unavailable("identity_unavailable", f"Entra ID: HTTP {exc.response.status_code}")
    return CrossCloudError(
        502,
        "identity_refused",
        f"Entra ID: {_first_line(text)}",
        f"Entra refused to exchange the AWS token for identity {settings.reader_client_id} in "
        f"tenant {settings.tenant_id}: see the AADSTS code.",
    )


def entra_unreachable(exc: Exception) -> CrossCloudError:
    """No answer from Entra's token endpoint (connection or read timeout)."""
    return _unavailable("identity_unavailable", f"Entra ID ({type(exc).__name__})")


def from_blob(exc: Exception, settings: LambdaSettings, name: str | None) -> CrossCloudError:
    """Blob Storage answered with an error, or could not be reached."""
    where = f"{settings.blob_account_url}/{settings.blob_container}"
    if isinstance(exc, HttpResponseError) and exc.response is not None:
        status = exc.status_code or 0
        raw = getattr(exc, "error_code", None)
        code = str(getattr(raw, "value", raw) or "")
        if code in _BLOB_OUTAGE or status >= 500 or status == 429:
            return _unavailable("blob_unavailable", f"Azure Storage: {code or status}")
        if status == 404 and code != "ContainerNotFound":
            return CrossCloudError(
                404,
                "not_found",
                f"Azure: no blob named {name!r} in container {settings.blob_container}.",
                'Check the name with {"action": "list"}; names are case-sensitive.',
            )
        if status == 403:
            return CrossCloudError(
                502,
                "blob_access_denied",
                f"Azure Storage: {code or status}",
                "The reader identity authenticated but may not read: it needs Storage Blob Data "
                f"Reader ({STORAGE_BLOB_DATA_READER}) on {where} (assignments take minutes).",
            )
        return CrossCloudError(
            502, "azure_error", f"Azure Storage: {status} {code}", "Azure Storage refused."
        )
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return _unavailable("blob_unavailable", f"Azure Storage: {type(exc).__name__}")
    log.exception("unexpected failure")
    return internal()


def timeout(budget: float) -> CrossCloudError:
    return CrossCloudError(
        504,
        "timeout",
        f"No answer within {budget:.1f} s (the Lambda's remaining time, minus a margin).",
        "A dependency (STS, Entra or Blob Storage) is slow or unreachable from the Lambda; "
        "retry later, or raise the Lambda's timeout.",
    )


def _mismatch_hint(differs: str | None, settings: LambdaSettings, claims: dict) -> str:
    """Presented vs expected, led by what Entra says differs (all three when it does not say)."""
    iss, sub, aud = claims.get("iss"), claims.get("sub"), claims.get("aud")
    want_iss = settings.expected_issuer or "the account's issuer the Pulumi program set"
    want_sub = settings.expected_subject or "the Lambda role's ARN the Pulumi program set"
    if differs == "issuer":
        lead = (
            "Entra says the ISSUER differs: the issuer is the AWS account's (one per account, "
            "no trailing slash); check that the Lambda runs in the account whose issuer the "
            "stack read (crosscloud:awsOutboundFederation, or the foundation's "
            "awsOutboundIssuers)."
        )
    elif differs == "audience":
        lead = (
            f"Entra says the AUDIENCE differs: ask GetWebIdentityToken for exactly "
            f"Audience=[{ENTRA_AUDIENCE!r}], the credential's only audience."
        )
    elif differs == "subject case":
        lead = (
            "Entra says the SUBJECT differs in CASE only: subjects are compared "
            "case-sensitively; set the credential's subject to the role ARN exactly as STS "
            "presents it (role names keep their case)."
        )
    elif differs == "subject":
        lead = (
            "Entra says the SUBJECT differs: only the Lambda's execution role (its role ARN, "
            "not an assumed-role session ARN) is trusted; run the code as that Lambda."
        )
    else:
        lead = "No federated credential of the reader identity matches the AWS token exactly."
    return (
        f"{lead} Presented: issuer {iss!r}, subject {sub!r}, audience {aud!r}; the federated "
        f"credential of identity {settings.reader_client_id} expects: issuer {want_iss!r}, "
        f"subject {want_sub!r}, audience {ENTRA_AUDIENCE!r}. Issuer and subject "
        "must be equal character for character (no wildcards). A credential created minutes "
        "ago may not be honoured yet: retry later."
    )


def _unavailable(code: str, what: str) -> CrossCloudError:
    return CrossCloudError(503, code, f"{what} is unavailable or throttling.", "Retry later.")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
