"""Bearer tokens as the local Azure front doors (fake ARM, the Blob RBAC gate) read them."""

from __future__ import annotations

from typing import Any

import jwt


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer ...` header, or None when there is none."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    return authorization.split(" ", 1)[1].strip()


def signed_claims(token: str, keys: jwt.PyJWKSet, **decode_options: Any) -> dict[str, Any]:
    """Claims of an RS256 token signed by one of `keys` (chosen by the token's `kid`).

    Raises `jwt.PyJWTError` for a bad token and `KeyError` for an unknown key id.
    """
    kid = jwt.get_unverified_header(token).get("kid", "")
    return jwt.decode(token, keys[kid].key, algorithms=["RS256"], **decode_options)
