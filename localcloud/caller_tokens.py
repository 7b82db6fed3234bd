"""Tokens an attacker can make without Entra, for the front door's refusal rows and tests.

Neither needs a private key: `alg: none` carries no signature at all, and an HS256 token "signed"
with the tenant's *public* key (which anyone can download) is the classic algorithm-confusion
attack on verifiers that pick the algorithm from the token's header. PyJWT refuses to make the
second one (it rejects PEM keys as HMAC secrets), so it is assembled here by hand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def _segment(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def alg_none(claims: dict[str, Any], kid: str | None = None) -> str:
    """`claims` with header `alg: none` and an empty signature."""
    header: dict[str, Any] = {"alg": "none", "typ": "JWT"}
    if kid:
        header["kid"] = kid
    return f"{_segment(header)}.{_segment(claims)}."


def hs256_with_public_key(claims: dict[str, Any], public_key: rsa.RSAPublicKey, kid: str) -> str:
    """`claims` MACed with HS256 using the PEM of the tenant's public key as the secret."""
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_segment(claims)}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
