"""What AWS STS checks before `AssumeRoleWithWebIdentity` hands out credentials — which moto
does not (it accepts any token and ignores trust policies).

Plugged into `MotoServer(sts_guard=...)`, it refuses the way AWS does:
- `InvalidIdentityToken` (400) when the token is not a valid JWT from a registered OIDC provider:
  bad RS256 signature (checked against the issuer's JWKS), `iss` not exactly a provider URL
  (the trailing slash matters), `aud` not in the provider's client id list;
- `ExpiredTokenException` (400) when `exp` has passed;
- `ValidationError` (400) when the token is shorter than 4 or longer than 20,000 characters
  (the API's length constraint on `WebIdentityToken`,
  https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html);
- `AccessDenied` (403) when the role's trust policy does not allow this provider, the action or
  the token's claims - evaluated by `localcloud.trust_evaluation`, which refuses any policy it
  cannot evaluate the way IAM would (fail closed).
"""

from __future__ import annotations

import json
import math
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from localcloud.moto_server import StsRefusal
from localcloud.trust_evaluation import Unevaluable, allows

NUMERIC_DATE_CLAIMS = ("exp", "nbf", "iat")
TOKEN_LENGTH = (4, 20_000)
"""`WebIdentityToken` length constraints of AssumeRoleWithWebIdentity."""


@dataclass(frozen=True)
class OidcProvider:
    """An IAM OIDC identity provider as AWS keeps it."""

    url: str
    """Issuer URL, exactly as the tokens' `iss` (e.g. `https://sts.windows.net/{tenant}/`)."""
    arn: str
    """The provider's ARN, which trust policies name as `Principal.Federated`."""
    client_ids: tuple[str, ...]
    """Audiences accepted (`client_id_lists`)."""
    jwks_url: str
    """Where its signing keys are served (locally: the fake Entra's JWKS)."""

    @property
    def condition_prefix(self) -> str:
        """IAM names condition keys after the provider URL without its scheme."""
        return self.url.removeprefix("https://")


@dataclass
class VerifierStats:
    accepted: int = 0
    refused: int = 0


class WebIdentityVerifier:
    """A `StsGuard`: called with the form parameters of each AssumeRoleWithWebIdentity."""

    def __init__(
        self,
        providers: Sequence[OidcProvider],
        trust_policies: Mapping[str, dict[str, Any] | str],
        ssl_context: ssl.SSLContext | None = None,
        now: Callable[[], float] | None = None,
    ) -> None:
        """`trust_policies` maps role ARN -> its trust policy (a dict or its JSON text)."""
        self._providers = {p.url: p for p in providers}
        self._policies = {
            arn: json.loads(doc) if isinstance(doc, str) else doc
            for arn, doc in trust_policies.items()
        }
        self._keys = {
            p.url: jwt.PyJWKClient(p.jwks_url, ssl_context=ssl_context, lifespan=3600)
            for p in providers
        }
        self._now = now or time.time
        self._lock = threading.Lock()
        self.stats = VerifierStats()
        self.refusals: list[StsRefusal] = []
        self.unevaluable: list[str] = []
        """Why a trust policy could not be evaluated (each such exchange was refused)."""

    def __call__(self, params: Mapping[str, str]) -> StsRefusal | None:
        refusal = self._check(params)
        with self._lock:
            if refusal:
                self.stats.refused += 1
                self.refusals.append(refusal)
            else:
                self.stats.accepted += 1
        return refusal

    def _check(self, params: Mapping[str, str]) -> StsRefusal | None:
        token = params.get("WebIdentityToken", "")
        role_arn = params.get("RoleArn", "")
        low, high = TOKEN_LENGTH
        if not low <= len(token) <= high:
            # Checked before anything is decoded, as AWS's request validation does.
            return StsRefusal(
                "ValidationError",
                "1 validation error detected: Value at 'webIdentityToken' failed to satisfy "
                f"constraint: Member must have length between {low} and {high}",
                400,
            )
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return _invalid("The web identity token is not a valid JWT.")
        provider = self._providers.get(str(unverified.get("iss", "")))
        if provider is None:
            # AWS: "No OpenIDConnect provider found in your account for {iss}".
            issuer = unverified.get("iss")
            return _invalid(f"No OpenIDConnect provider found in your account for {issuer}")
        try:
            key = self._keys[provider.url].get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=list(provider.client_ids),
                issuer=provider.url,
                # Expiry is compared below against the injectable clock.
                options={"verify_exp": False, "require": ["exp", "iss", "aud"]},
            )
        except jwt.InvalidAudienceError:
            return _invalid("Incorrect token audience")
        except jwt.PyJWTError as error:
            return _invalid(f"The web identity token is not valid: {type(error).__name__}")
        for claim in NUMERIC_DATE_CLAIMS:
            if claim in claims and not _numeric_date(claims[claim]):
                # RFC 7519 section 2 NumericDate: a number. "NaN" (or NaN, which Python's json
                # reads) would otherwise compare false with every time and never expire.
                return _invalid(f"The web identity token's {claim} is not a NumericDate")
        if float(claims["exp"]) <= self._now():
            return StsRefusal("ExpiredTokenException", "Token expired", 400)
        policy = self._policies.get(role_arn)
        try:
            allowed = policy is not None and allows(
                policy, provider.arn, provider.condition_prefix, claims
            )
        except Unevaluable as problem:
            self.unevaluable.append(str(problem))
            allowed = False
        if not allowed:
            return StsRefusal(
                "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403
            )
        return None


def _numeric_date(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _invalid(message: str) -> StsRefusal:
    return StsRefusal("InvalidIdentityToken", message, 400)
