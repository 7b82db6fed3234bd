"""What AWS STS checks before `AssumeRoleWithWebIdentity` hands out credentials — which moto
does not (it accepts any token and ignores trust policies).

Plugged into `MotoServer(sts_guard=...)`, it refuses the way AWS does:
- `InvalidIdentityToken` (400) when the token is not a valid JWT from a registered OIDC provider:
  bad RS256 signature (checked against the issuer's JWKS), `iss` not exactly a provider URL
  (the trailing slash matters), `aud` not in the provider's client id list;
- `ExpiredTokenException` (400) when `exp` has passed;
- `AccessDenied` (403) when the role's trust policy does not allow this provider, the action or
  the token's claims (`StringEquals` / `StringLike` on `{provider}:aud`, `:sub`, ...).

There is no library for IAM policy evaluation in Python; this evaluates the subset trust
policies for web identities use (Allow/Deny, Principal.Federated, Action, StringEquals,
StringLike, their ForAnyValue/ForAllValues forms) and refuses anything else (fail closed).
"""

from __future__ import annotations

import fnmatch
import json
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from localcloud.moto_server import StsRefusal

WEB_IDENTITY_ACTION = "sts:AssumeRoleWithWebIdentity"


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
        if float(claims["exp"]) <= self._now():
            return StsRefusal("ExpiredTokenException", "Token expired", 400)
        policy = self._policies.get(role_arn)
        if policy is None or not _allows(policy, provider, claims):
            return StsRefusal(
                "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403
            )
        return None


def _invalid(message: str) -> StsRefusal:
    return StsRefusal("InvalidIdentityToken", message, 400)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _statement_matches(statement: dict[str, Any], provider: OidcProvider, claims: dict) -> bool:
    federated = _as_list((statement.get("Principal") or {}).get("Federated", []))
    if provider.arn not in federated:
        return False
    actions = _as_list(statement.get("Action", []))
    if not any(fnmatch.fnmatchcase(WEB_IDENTITY_ACTION, a) for a in actions):
        return False
    return _conditions_hold(statement.get("Condition", {}), provider, claims)


def _conditions_hold(conditions: dict[str, Any], provider: OidcProvider, claims: dict) -> bool:
    """Every operator and every key must hold (AND); values of one key are alternatives (OR)."""
    for operator, tests in conditions.items():
        qualifier, _, base = operator.rpartition(":")
        if base not in ("StringEquals", "StringLike") or qualifier not in (
            "",
            "ForAnyValue",
            "ForAllValues",
        ):
            return False  # an operator we do not evaluate: refuse rather than guess
        for key, expected in tests.items():
            prefix, _, claim = key.rpartition(":")
            if prefix != provider.condition_prefix:
                return False
            actual = _as_list(claims.get(claim)) if claim in claims else []
            wanted = [str(v) for v in _as_list(expected)]

            def matches(value: Any, wanted: list[str] = wanted, base: str = base) -> bool:
                if base == "StringEquals":
                    return str(value) in wanted
                return any(fnmatch.fnmatchcase(str(value), pattern) for pattern in wanted)

            if qualifier == "ForAllValues":
                ok = all(matches(v) for v in actual)
            else:
                ok = any(matches(v) for v in actual)
            if not ok:
                return False
    return True


def _allows(policy: dict[str, Any], provider: OidcProvider, claims: dict) -> bool:
    statements = _as_list(policy.get("Statement", []))
    if any(
        s.get("Effect") == "Deny" and _statement_matches(s, provider, claims) for s in statements
    ):
        return False
    return any(
        s.get("Effect") == "Allow" and _statement_matches(s, provider, claims) for s in statements
    )
