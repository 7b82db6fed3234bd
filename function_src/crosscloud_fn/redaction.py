"""Logging that cannot print a credential, whatever level the SDK loggers are turned up to.

At DEBUG, botocore logs request parameters (the `WebIdentityToken`), raw STS responses
(`SecretAccessKey`, `SessionToken`) and SigV4 canonical requests (`x-amz-security-token`);
azure-core and urllib3 log headers and URLs. Redaction therefore happens where every record is
born - in the log record factory - rather than as a filter on a few loggers: a filter on the
`botocore` logger does not see records that its children (`botocore.endpoint`, ...) propagate to
the root handlers, and the Functions host installs its own handlers that we do not control.
`RedactingFilter` applies the same rules for anyone who wants it on a handler too.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import traceback
from collections.abc import Callable
from typing import Any

MASK = "[REDACTED]"
INTERNAL = "[internal address]"

# Values that are credentials in any of the shapes they are logged in: JSON/dict repr
# ('Key': 'v' / 'Key': b'v'), XML (<Key>v</Key>), form/query (Key=v), header lines (Key: v).
_SECRET_NAMES = (
    "WebIdentityToken",
    "SessionToken",
    "SecretAccessKey",
    "X-Amz-Security-Token",
    "access_token",
    "refresh_token",
    "client_secret",
    "client_assertion",
    "X-IDENTITY-HEADER",
    "IDENTITY_HEADER",
)
_NAMES = "|".join(re.escape(n) for n in _SECRET_NAMES)

_RULES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # JWTs (Entra tokens, whatever they are embedded in): header.payload.signature, base64url.
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK),
    # XML elements, e.g. botocore.parsers logging the raw STS response body.
    (re.compile(rf"(?i)<({_NAMES})>[^<]*</\1>"), lambda m: f"<{m[1]}>{MASK}</{m[1]}>"),
    # dict/JSON reprs: 'Key': 'value', "Key": "value", 'Key': b'value'.
    (re.compile(rf"""(?i)(['"](?:{_NAMES})['"]\s*:\s*b?)(['"])(?:(?!\2).)*\2"""), rf"\1\2{MASK}\2"),
    # Form bodies and query strings: Key=value (and a SAS signature, should one ever appear).
    (re.compile(rf"(?i)\b({_NAMES}|sig)=[^&\s'\"]+"), rf"\1={MASK}"),
    # Header lines in canonical requests and HTTP dumps: key:value / key: value.
    (re.compile(rf"(?im)^(\s*(?:{_NAMES})\s*:\s*)\S.*$"), rf"\1{MASK}"),
    # The same anywhere in a line ("... X-IDENTITY-HEADER: v ..." in an endpoint's error text).
    (re.compile(rf"(?i)\b((?:{_NAMES})\s*:\s*)(?!\[REDACTED\])[^\s'\",;]+"), rf"\1{MASK}"),
    # Authorization headers in any shape: 'Authorization': b'...', Authorization: Bearer ...
    (
        re.compile(r"""(?i)(['"]?authorization['"]?\s*[:=]\s*b?['"]?)[^'"\r\n]+"""),
        rf"\1{MASK}",
    ),
    (re.compile(r"(?i)\bBearer\s+[A-Za-z0-9._~+/=-]+"), f"Bearer {MASK}"),
)


# URLs and host:ports that only mean something inside the platform: loopback, link-local (the
# IMDS at 169.254.169.254), private IPv4 ranges (RFC 1918), IPv6 loopback and unique-local.
_INTERNAL_HOST = (
    r"(?:localhost|127(?:\.\d{1,3}){3}|10(?:\.\d{1,3}){3}|169\.254(?:\.\d{1,3}){2}"
    r"|192\.168(?:\.\d{1,3}){2}|172\.(?:1[6-9]|2\d|3[01])(?:\.\d{1,3}){2}"
    r"|\[(?:::1|f[cd][0-9a-f:]*)\])"
)
_INTERNAL_URL = re.compile(
    rf"(?i)\b(?:https?://{_INTERNAL_HOST}(?::\d+)?[^\s'\"<>]*|{_INTERNAL_HOST}:\d+)"
)
# Where the managed identity endpoint may be named by the platform (any host).
_IDENTITY_ENDPOINT_VARIABLES = ("IDENTITY_ENDPOINT", "MSI_ENDPOINT", "IMDS_ENDPOINT")


def redact(text: str) -> str:
    """`text` with every credential-shaped value replaced by [REDACTED], and the platform's
    internal addresses (the identity endpoint, loopback and private hosts) by [internal address]."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    for variable in _IDENTITY_ENDPOINT_VARIABLES:
        endpoint = os.environ.get(variable, "")
        if "://" in endpoint:
            netloc = endpoint.split("://", 1)[1].split("/", 1)[0]
            for secret in (endpoint, netloc):
                if secret:
                    text = text.replace(secret, INTERNAL)
    return _INTERNAL_URL.sub(INTERNAL, text)


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Render the record's message (and traceback) now, redacted, and drop the raw parts.

    Formatting eagerly is what makes this safe: args (a dict of request parameters, an HTTP
    response) and exception objects could otherwise be rendered later by any handler.
    """
    try:
        message = record.getMessage()
    except Exception:  # a broken format string must not break logging
        message = f"{record.msg!r} % {record.args!r}"
    record.msg = redact(message)
    record.args = None
    if record.exc_info:
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip())
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """A filter for handlers (or loggers) that redacts in place and never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_install_lock = threading.Lock()
_previous_factory: Callable[..., logging.LogRecord] | None = None
_quietened: list[str] = []

# Chatty at INFO/DEBUG and useless in production; quietened only if nobody configured them.
_QUIET_LOGGERS = (
    "azure.core.pipeline.policies.http_logging_policy",
    "azure.identity",
    "msal",
    "botocore",
    "boto3",
    "urllib3",
)


def install() -> None:
    """Redact every log record created in this process from now on. Idempotent."""
    global _previous_factory
    with _install_lock:
        if _previous_factory is not None:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redact_record(previous(*args, **kwargs))

        _previous_factory = previous
        logging.setLogRecordFactory(factory)
        for name in _QUIET_LOGGERS:
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.WARNING)
                _quietened.append(name)


def uninstall() -> None:
    """Undo `install` (tests use it to prove that the redaction is what keeps logs clean)."""
    global _previous_factory
    with _install_lock:
        if _previous_factory is not None:
            logging.setLogRecordFactory(_previous_factory)
            _previous_factory = None
        while _quietened:
            logger = logging.getLogger(_quietened.pop())
            if logger.level == logging.WARNING:  # unless someone has set it since
                logger.setLevel(logging.NOTSET)


def installed() -> bool:
    return _previous_factory is not None
