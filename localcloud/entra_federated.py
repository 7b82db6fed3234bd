"""Fake Entra token endpoint for workload identity federation (`client_assertion`).

`ClientAssertionCredential` (azure-identity's AadClient) posts to
`{AZURE_AUTHORITY_HOST}/{tenant}/oauth2/v2.0/token` with `grant_type=client_credentials`,
`client_id`, `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`,
`client_assertion` (the external token) and `scope`. Entra then, as imitated here:

1. refuses a token not signed with RS256: AADSTS5002738 (Entra accepts RS256 only; ES256/ES384
   are refused, docs/aws-readers.md);
2. looks for a federated identity credential of the identity `client_id` whose issuer, subject
   and audience equal the token's `iss`, `sub` and `aud` exactly (no wildcards, case-sensitive).
   None is "No matching federated identity record found for presented assertion <what>", with
   the code naming what differs, as real Entra answers: AADSTS700211 the issuer
   (Azure/azure-workload-identity#1200), AADSTS700213 the subject (Azure/login#482),
   AADSTS7002138 the subject but for case (Azure/login#517), AADSTS700212 the audience. Each
   real answer names one field; this fake looks at the issuer, then the subject, then the
   audience;
3. fetches the issuer's discovery document and JWKS over HTTPS, as Entra does, and verifies the
   signature and lifetime (AADSTS700024 when the assertion is not within its valid time range);
4. issues the identity a token for the scope's resource, signed like every token of the fake
   Entra (`FakeEntra.issue_token`), which the Blob gate verifies and authorises by `oid`.

Error bodies have the shape AadClient reads (`error`, `error_description`, `error_codes`).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import jwt

from localcloud.certs import TlsFiles
from localcloud.entra import EntraRefusal, FakeEntra, Identity
from localcloud.https import LoopbackHttpsServer, LoopbackService, QuietHandler
from localcloud.net import LOOPBACK, free_port

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FETCH_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class FederatedCredential:
    issuer: str
    subject: str
    audiences: tuple[str, ...]


_NO_MATCH = "No matching federated identity record found for presented assertion"
_CHECK = "Check your federated identity credential Subject, Audience and Issuer against the "


def _match(
    credentials: list[FederatedCredential], issuer: str, subject: str, audiences: list[str]
) -> None:
    """EntraRefusal unless one credential has this issuer, subject and one of the audiences."""
    same_issuer = [c for c in credentials if c.issuer == issuer]
    if not same_issuer:
        raise EntraRefusal(
            400,
            "invalid_client",
            f"AADSTS700211: {_NO_MATCH} issuer '{issuer}'. {_CHECK}presented assertion.",
        )
    same_subject = [c for c in same_issuer if c.subject == subject]
    if not same_subject:
        if any(c.subject.lower() == subject.lower() for c in same_issuer):
            raise EntraRefusal(
                400,
                "invalid_client",
                f"AADSTS7002138: {_NO_MATCH} subject '{subject}'. The subject matches with "
                "case-insensitive comparison, but not with case-sensitive comparison. "
                f"{_CHECK}presented assertion.",
            )
        raise EntraRefusal(
            400,
            "invalid_client",
            f"AADSTS700213: {_NO_MATCH} subject '{subject}'. {_CHECK}presented assertion.",
        )
    if not any(a in c.audiences for c in same_subject for a in audiences):
        raise EntraRefusal(
            400,
            "invalid_client",
            f"AADSTS700212: {_NO_MATCH} audience '{','.join(audiences)}'. {_CHECK}presented "
            "assertion.",
        )


class FederatedTokenEndpoint(LoopbackService):
    """Context manager; point `AZURE_AUTHORITY_HOST` at `authority`."""

    _thread_name = "fake-entra-federated"

    def __init__(self, entra: FakeEntra, tls: TlsFiles) -> None:
        self.entra = entra
        self.tls = tls
        self.port = free_port()
        self.authority = f"https://{LOOPBACK}:{self.port}"
        self._client_tls = ssl.create_default_context(cafile=str(tls.ca_cert))
        self._lock = threading.Lock()
        self._identities: dict[str, Identity] = {}
        self._credentials: dict[str, list[FederatedCredential]] = {}
        self.requests: Counter[str] = Counter()
        """Token requests by outcome (`issued`, `AADSTS700213`, ...)."""

    def add_identity(self, identity: Identity, credentials: list[FederatedCredential]) -> None:
        """A user-assigned identity and its federated credentials (at most 20, as Entra)."""
        if len(credentials) > 20:
            raise ValueError("Entra allows at most 20 federated credentials per identity")
        with self._lock:
            self._identities[identity.client_id] = identity
            self._credentials[identity.client_id] = list(credentials)

    def exchange(self, form: dict[str, str]) -> dict[str, Any]:
        """The token answer for a token request, or EntraRefusal."""
        client_id = form.get("client_id", "")
        assertion = form.get("client_assertion", "")
        if form.get("grant_type") != "client_credentials" or (
            form.get("client_assertion_type") != JWT_BEARER or not assertion
        ):
            raise EntraRefusal(400, "invalid_request", "AADSTS900144: client_assertion required.")
        with self._lock:
            identity = self._identities.get(client_id)
            credentials = list(self._credentials.get(client_id, []))
        if identity is None:
            raise EntraRefusal(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{client_id}' was not found.",
            )
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise EntraRefusal(400, "invalid_client", "AADSTS50027: Invalid JWT token.") from None
        algorithm = str(header.get("alg", ""))
        if algorithm != "RS256":
            raise EntraRefusal(
                400,
                "invalid_client",
                f"AADSTS5002738: Invalid JWT token. '{algorithm}' is not a supported signature "
                "algorithm. Supported signing algorithms are: 'RS256'.",
            )
        issuer, subject = str(claims.get("iss", "")), str(claims.get("sub", ""))
        audiences = claims.get("aud", [])
        audiences = [audiences] if isinstance(audiences, str) else list(audiences)
        _match(credentials, issuer, subject, audiences)
        self._verify(assertion, issuer, audiences)
        scope = form.get("scope", "")
        resource = scope.split(" ")[0].removesuffix("/.default")
        token, expires_on = self.entra.issue_token(identity, resource)
        return {
            "token_type": "Bearer",
            "expires_in": expires_on - int(time.time()),
            "ext_expires_in": expires_on - int(time.time()),
            "access_token": token,
        }

    def _verify(self, assertion: str, issuer: str, audiences: list[str]) -> None:
        """Signature and lifetime, with the keys the issuer publishes (fetched over HTTPS)."""
        discovery = self._fetch(f"{issuer}/.well-known/openid-configuration")
        if discovery.get("issuer") != issuer:
            raise EntraRefusal(400, "invalid_client", "AADSTS50027: issuer mismatch in discovery")
        keys = jwt.PyJWKSet.from_dict(self._fetch(str(discovery["jwks_uri"])))
        kid = jwt.get_unverified_header(assertion).get("kid", "")
        try:
            jwt.decode(
                assertion,
                keys[kid].key,
                algorithms=["RS256"],
                audience=audiences,
                issuer=issuer,
                options={"require": ["exp", "iat", "sub"]},
            )
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
            raise EntraRefusal(
                400,
                "invalid_client",
                "AADSTS700024: Client assertion is not within its valid time range.",
            ) from None
        except (jwt.PyJWTError, KeyError):
            raise EntraRefusal(
                400, "invalid_client", "AADSTS50027: Invalid JWT token (signature)."
            ) from None

    def _fetch(self, url: str) -> dict[str, Any]:
        with urllib.request.urlopen(  # noqa: S310 - https on loopback, CA pinned
            url, timeout=FETCH_TIMEOUT_SECONDS, context=self._client_tls
        ) as response:
            return json.loads(response.read(64 * 1024))

    def _handler(self) -> type[QuietHandler]:
        endpoint = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
                tenant = self.path.strip("/").split("/")[0]
                if tenant != endpoint.entra.tenant_id or not self.path.endswith(
                    "/oauth2/v2.0/token"
                ):
                    self.send_json(404, {"error": "not_found"})
                    return
                try:
                    answer = endpoint.exchange(form)
                except EntraRefusal as refusal:
                    code = refusal.description.split(":")[0]
                    with endpoint._lock:
                        endpoint.requests[code] += 1
                    digits = code.removeprefix("AADSTS")
                    self.send_json(
                        refusal.status,
                        {
                            "error": refusal.error,
                            "error_description": refusal.description,
                            "error_codes": [int(digits)] if digits.isdigit() else [],
                        },
                    )
                    return
                with endpoint._lock:
                    endpoint.requests["issued"] += 1
                self.send_json(200, answer)

        return Handler

    def _make_server(self) -> LoopbackHttpsServer:
        return LoopbackHttpsServer(self.port, self._handler(), self.tls)
