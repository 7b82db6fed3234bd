"""Object names a caller may ask for: one rule for both stores, checked before any cloud call."""

from __future__ import annotations

import unicodedata

MAX_NAME_LENGTH = 1024  # S3 keys: 1024 bytes of UTF-8; blob names: 1024 characters


class BadName(ValueError):
    """The requested name is not acceptable; the message says why (safe to show the caller)."""


def validate_name(name: str | None) -> str:
    """Return `name` unchanged if it is a plain object name, else raise `BadName`."""
    if not name:
        raise BadName("name is required: /api/read?name=<object name>")
    if len(name.encode("utf-8")) > MAX_NAME_LENGTH:
        raise BadName(f"name is longer than {MAX_NAME_LENGTH} bytes")
    for char in name:
        # Cc = C0/C1 controls incl. NUL, CR/LF (log and header injection); Cf = invisible format
        # characters (bidi overrides) that make a name display as something else; Zl/Zp =
        # U+2028/U+2029, line breaks to log viewers and JavaScript.
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            raise BadName("name contains a control character")
    if "\\" in name:
        raise BadName("name contains a backslash; use '/' between segments")
    if name.startswith("/") or "//" in name:
        # An empty segment: S3 keeps it, Blob Storage URLs make it a different path; and under
        # a key prefix `/x` would read `prefix//x`. No store needs one for a plain name.
        raise BadName("name starts with '/' or contains '//'")
    if any(segment in (".", "..") for segment in name.split("/")):
        raise BadName("name contains a '.' or '..' segment")
    return name
