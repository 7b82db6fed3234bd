"""The checks `make verify` runs; each returns a `Check` and never raises for a cloud's "no"."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import boto3
import jwt
import requests
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from components import trust
from components.reader_api import AZURE_CLI_CLIENT_ID

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO / "sample_data"
# A token for this audience is one every operator can get, and the apps must refuse it.
OTHER_AUDIENCE = "https://management.azure.com"
REQUIRED_OUTPUTS = (
    "tenantId",
    "trustedPrincipalIds",
    "audience",
    "awsRoleArn",
    "awsRegion",
    "subscriptionId",
    "resourceGroupName",
    "functionAppNames",
    "samiFunctionHostname",
    "uamiFunctionHostname",
    "callerAudience",
)
APPS = ("sami", "uami")
_ENTRA_CODE = re.compile(r"AADSTS\d+")
# Entra's "not assigned" refusals: AADSTS50105 for a person, AADSTS501051 for an application.
_NOT_ASSIGNED = ("AADSTS50105", "AADSTS501051")


class VerifyError(RuntimeError):
    """Verification could not even start (missing outputs, no credential)."""


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    passed: bool
    detail: str


def require_outputs(outputs: Mapping[str, Any]) -> None:
    missing = [key for key in REQUIRED_OUTPUTS if not outputs.get(key)]
    if missing:
        raise VerifyError(
            "the stack outputs lack " + ", ".join(missing) + ": run `pulumi up` first (with "
            "this version of the program), or pass the right --stack / --outputs"
        )


def shared_sample() -> tuple[str, str, str]:
    """(name, sha256 of the Azure copy, sha256 of the S3 copy) of the sample in both clouds."""
    azure = {p.name: p for p in (SAMPLE_DATA / "azure").iterdir() if p.is_file()}
    aws = {p.name: p for p in (SAMPLE_DATA / "s3").iterdir() if p.is_file()}
    both = sorted(set(azure) & set(aws))
    if not both:
        raise VerifyError("sample_data/azure and sample_data/s3 share no file name")
    name = both[0]

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    return name, digest(azure[name]), digest(aws[name])


# Entra's refusals for a principal that holds no app role on an app that requires assignment:
# AADSTS50105 (a user, e.g. `az login`), AADSTS501051 (a service principal or managed identity).
# https://learn.microsoft.com/entra/identity-platform/reference-error-codes
NOT_ASSIGNED_CODES = ("AADSTS50105", "AADSTS501051")


def _verify_tls() -> str | bool:
    return os.environ.get("REQUESTS_CA_BUNDLE") or True


def entra_code(error: BaseException) -> str | None:
    """The AADSTS code in a refusal, if Entra answered one (azure-identity keeps its message,
    DefaultAzureCredential each credential's)."""
    match = _ENTRA_CODE.search(str(error))
    return match.group(0) if match else None


def unreachable(resource: str, error: AzureError) -> str:
    """A token request that got no answer from Entra (ServiceRequestError: no connection or a
    timeout; ServiceResponseError, HttpResponseError: a broken or unexpected answer)."""
    return (
        f"could not get a token for {resource} ({type(error).__name__}: {_short(error)}): is "
        "Entra (or the sign-in's endpoint) reachable from here?"
    )


def caller_token(credential: TokenCredential, outputs: Mapping[str, Any]) -> str:
    """The operator's own access token for the stack's reader API: the apps let in callers
    holding `CrossCloud.Read` (the deployer does unless crosscloud:deployerIsCaller is false).
    No function key, no `listKeys`: the routes are anonymous at the host and guarded in code.
    Raises `VerifyError` saying what to do; any azure-core error is caught, never a crash."""
    audience = outputs["callerAudience"]
    try:
        return credential.get_token(f"{audience}/.default").token
    except ClientAuthenticationError as error:
        code = entra_code(error)
        if code == "AADSTS65001":
            message = (
                f"Entra asks for consent (AADSTS65001) to the reader API {audience}: it "
                f"pre-authorizes only the Azure CLI ({AZURE_CLI_CLIENT_ID}), so sign in with "
                "`az login` (not Azure PowerShell or VS Code) and run verify again "
                "(docs/callers.md)"
            )
        elif code in _NOT_ASSIGNED:
            message = (
                f"Entra would not give you a token for the reader API {audience} "
                f"({_short(error)}): add your object id to crosscloud:callerPrincipalIds or "
                "keep crosscloud:deployerIsCaller true, then pulumi up (docs/callers.md)"
            )
        else:
            message = (
                f"no token for the reader API {audience} ({_short(error)}): sign in with "
                "`az login` as someone who holds CrossCloud.Read (docs/callers.md)"
            )
        raise VerifyError(message) from error
    except AzureError as error:
        raise VerifyError(unreachable(audience, error)) from error


def read_both_clouds(
    credential: TokenCredential,
    outputs: Mapping[str, Any],
    app: str,
    sample: tuple[str, str, str],
    timeout: float,
) -> Check:
    """`/api/read` on one app must return the shared sample from Azure and from S3."""
    name, azure_sha, aws_sha = sample
    check = f"{app}: /api/read?name={name} answers from both clouds"
    try:
        token = caller_token(credential, outputs)
    except VerifyError as error:
        return Check(check, False, str(error))
    host = outputs[f"{app}FunctionHostname"]
    try:
        response = requests.get(
            f"https://{host}/api/read?name={quote(name)}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            verify=_verify_tls(),
        )
    except requests.RequestException as error:
        return Check(check, False, f"could not reach https://{host}: {_short(error)}")
    body = _json(response)
    if response.status_code != 200:
        error = body.get("error") or {}
        detail = f"HTTP {response.status_code} {error.get('code', '')}: {error.get('message', '')}"
        if error.get("hint"):
            detail += f" — hint: {error['hint']}"
        return Check(check, False, detail)
    got = {cloud: (body.get(cloud) or {}).get("sha256") for cloud in ("azure", "aws")}
    wrong = [
        cloud for cloud, want in (("azure", azure_sha), ("aws", aws_sha)) if got[cloud] != want
    ]
    if wrong:
        return Check(check, False, "content differs from sample_data for " + ", ".join(wrong))
    return Check(check, True, "Azure and S3 copies match sample_data")


def front_door_refuses(
    credential: TokenCredential, outputs: Mapping[str, Any], app: str, timeout: float
) -> Check:
    """The app answers 401 `unauthenticated` to a request without a token and to the operator's
    valid token for another audience (ARM's): it checks `aud`, not just a signature."""
    check = f"{app}: no token and a token for another audience get 401"
    host = outputs[f"{app}FunctionHostname"]
    try:
        other = credential.get_token(f"{OTHER_AUDIENCE}/.default").token
    except ClientAuthenticationError as error:
        return Check(check, False, f"no token for {OTHER_AUDIENCE}: {_short(error)}")
    except AzureError as error:
        return Check(check, False, unreachable(OTHER_AUDIENCE, error))
    seen = []
    for label, headers in (("no token", {}), ("ARM token", {"Authorization": f"Bearer {other}"})):
        try:
            response = requests.get(
                f"https://{host}/api/whoami", headers=headers, timeout=timeout, verify=_verify_tls()
            )
        except requests.RequestException as error:
            return Check(check, False, f"could not reach https://{host}: {_short(error)}")
        code = (_json(response).get("error") or {}).get("code")
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code != 401 or code != "unauthenticated" or "Bearer" not in challenge:
            return Check(
                check,
                False,
                f"{label}: HTTP {response.status_code} {code or ''} - the app is open to "
                "callers it cannot identify (are CROSSCLOUD_CALLER_* set and the package current?)",
            )
        seen.append(f"{label} 401")
    return Check(check, True, ", ".join(seen))


def operator_refused_by_entra(credential: TokenCredential, audience: str) -> Check:
    """The operator holds no app role, so Entra must not issue a token for the audience."""
    check = "Entra refuses the operator a token for the audience (assignment required)"
    try:
        credential.get_token(f"{audience}/.default")
    except ClientAuthenticationError as error:
        # Only Entra's "not assigned" answer proves the point; any other failure (no sign-in
        # at all, MFA required, a network error) means the check could not run.
        code = next((c for c in NOT_ASSIGNED_CODES if re.search(rf"\b{c}\b", str(error))), None)
        if code is None:
            return Check(
                check,
                False,
                "could not run: the operator's sign-in failed before Entra could refuse "
                f"({_short(error)}); sign in (az login) and run verify again",
            )
        return Check(check, True, code)
    except AzureError as error:
        return Check(check, False, unreachable(audience, error))
    return Check(
        check,
        False,
        "Entra issued the operator a token for the audience: is 'assignment required' off on "
        "the federation app's service principal, or does the operator hold AssumeAWSRole?",
    )


def worthless_token(outputs: Mapping[str, Any], now: float | None = None) -> str:
    """A web identity token with everything the role trusts - the stack's issuer, audience and a
    trusted `sub`, valid right now - signed by a key made for this call and thrown away.

    It is worthless by construction: no one (Entra included) has the key, so the only thing that
    can make STS refuse it is the signature check against Entra's published keys.
    """
    issued = int(time.time() if now is None else now)
    trusted = outputs["trustedPrincipalIds"][0]
    claims = {
        "iss": trust.issuer_url(outputs["tenantId"]),
        "aud": outputs["audience"],
        "sub": trusted,
        "oid": trusted,
        "tid": outputs["tenantId"],
        "iat": issued,
        "nbf": issued - 60,
        "exp": issued + 600,
    }
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": secrets.token_hex(16)})


# InvalidIdentityToken messages that are about something else than the signature: then the
# check proves nothing about signatures and says what is wrong instead.
_NOT_ABOUT_THE_SIGNATURE = {
    "No OpenIDConnect provider found": "the IAM OIDC provider for the stack's issuer is missing",
    "Incorrect token audience": "the OIDC provider's client id list lacks the audience",
}


def forged_token_refused_by_sts(outputs: Mapping[str, Any], timeout: float) -> Check:
    """STS must refuse `worthless_token` as InvalidIdentityToken: the OIDC provider checks
    signatures against Entra's keys. No live token is ever sent: `AWS_ENDPOINT_URL_STS` or an AWS
    config file may point STS anywhere, and what goes there is worth nothing."""
    check = "AWS STS refuses a token with trusted claims signed by a stranger's key"
    # AssumeRoleWithWebIdentity is an unsigned call: the token is the only credential.
    sts = boto3.client(
        "sts",
        region_name=outputs["awsRegion"],
        config=Config(signature_version=UNSIGNED, connect_timeout=timeout, read_timeout=timeout),
    )
    try:
        sts.assume_role_with_web_identity(
            RoleArn=outputs["awsRoleArn"],
            RoleSessionName="crosscloud-verify",
            WebIdentityToken=worthless_token(outputs),
            DurationSeconds=900,
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "refused")
        message = error.response.get("Error", {}).get("Message", "")
        if code != "InvalidIdentityToken":
            return Check(
                check,
                False,
                f"{code}: STS should refuse the signature (InvalidIdentityToken) before it "
                "looks at the trust policy",
            )
        for fragment, problem in _NOT_ABOUT_THE_SIGNATURE.items():
            if fragment in message:
                return Check(check, False, f"{code} ({fragment}): {problem}")
        return Check(check, True, code)
    except BotoCoreError as error:
        return Check(check, False, f"could not reach STS: {_short(error)}")
    return Check(
        check,
        False,
        "STS handed out credentials for a token nobody but this check could sign: the OIDC "
        "provider does not check signatures against Entra's keys",
    )


def trust_policy_pins_identities(outputs: Mapping[str, Any], timeout: float) -> Check:
    """The role's deployed trust policy (read with the operator's AWS sign-in, iam:GetRole)
    must pin `aud` to the audience and `sub` to exactly the stack's trusted identities."""
    check = "the IAM trust policy pins aud and exactly the trusted sub ids"
    # IAM is global; any region resolves to its one endpoint, but botocore wants one.
    iam = boto3.client(
        "iam",
        region_name=outputs["awsRegion"],
        config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"mode": "standard"}),
    )
    if not iam.meta.endpoint_url.lower().startswith("https://"):
        # Signed with the operator's AWS sign-in: its session token would travel in clear.
        return Check(
            check,
            False,
            f"refused to send the operator's AWS credentials to {iam.meta.endpoint_url}: IAM's "
            "endpoint (AWS_ENDPOINT_URL_IAM / AWS_ENDPOINT_URL) must be https",
        )
    role_name = outputs["awsRoleArn"].rsplit("/", 1)[1]
    try:
        document = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    except (ClientError, BotoCoreError) as error:
        return Check(check, False, f"could not read the role (iam:GetRole): {_short(error)}")
    if isinstance(document, str):
        # The raw API answers URL-encoded JSON; boto3 usually decodes it already.
        document = json.loads(unquote(document))
    problems = trust.pinning_problems(
        document, outputs["tenantId"], outputs["audience"], outputs["trustedPrincipalIds"]
    )
    if problems:
        return Check(check, False, "; ".join(problems))
    return Check(check, True, f"{len(outputs['trustedPrincipalIds'])} trusted ids, aud pinned")


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:300]
