"""The Lambda's work: `list` and `read` on the data container, with state kept while warm.

A Lambda execution environment serves many invocations one at a time; the credential (with its
MSAL token cache) and the container client are built on the first and reused, so a warm
invocation makes no STS and no Entra call until the storage token nears its expiry.

Answers have the shape of the function's Azure part (crosscloud_fn: `describe`, the same name
validation and size limits) plus `status`: `{"status": 200, "azure": {"container", "blobs",
"truncated"}}` for list, `{"status": 200, "azure": {"name", "size", "sha256", "text"|"base64"}}`
for read, `{"status": 4xx/5xx, "error": {"code", "message", "hint"}}` otherwise.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import ClientAssertionCredential
from azure.storage.blob import ExponentialRetry
from botocore.exceptions import BotoCoreError, ClientError
from crosscloud_fn import errors, redaction
from crosscloud_fn.names import BadName, validate_name
from crosscloud_fn.readers import BlobReader

from crosscloud_lambda import failures
from crosscloud_lambda.settings import LambdaSettings, SettingsError
from crosscloud_lambda.web_identity import WebIdentityAssertion, sts_client

STORAGE_SCOPE = "https://storage.azure.com/.default"
MARGIN_SECONDS = 1.0
"""Kept from the Lambda's remaining time to answer and log before Lambda ends the invocation."""
DEFAULT_BUDGET_SECONDS = 25.0
"""Budget when no Lambda context tells the remaining time (a local run)."""
log = logging.getLogger("crosscloud.lambda")


class NoTokenRetry(ExponentialRetry):
    """Storage's retry with two attempts and short backoffs, never retrying a refused token
    (Entra's answer will not change; the function does the same: crosscloud_fn.service)."""

    def __init__(self) -> None:
        super().__init__(initial_backoff=1, increment_base=2, retry_total=1, random_jitter_range=1)

    def increment(
        self, settings: dict[str, Any], request: Any, response: Any = None, error: Any = None
    ) -> bool:
        if isinstance(error, ClientAuthenticationError) and error.response is None:
            return False
        return super().increment(settings, request, response=response, error=error)


class Reader:
    """Per-process state: the AWS-token assertion, the Entra credential, the container."""

    def __init__(self, settings: LambdaSettings, sts: Any | None = None) -> None:
        self.settings = settings
        self.assertion = WebIdentityAssertion(
            sts if sts is not None else sts_client(settings), settings.token_duration
        )
        bounds: dict[str, Any] = {
            # azure-core's RequestsTransport and RetryPolicy read these (300 s and 10 retries
            # by default), as for the function's ManagedIdentityCredential.
            "connection_timeout": settings.connect_timeout,
            "read_timeout": settings.call_timeout,
            "retry_total": 1,
            "retry_backoff_factor": 0.2,
            "retry_backoff_max": 1,
        }
        self.credential = ClientAssertionCredential(
            settings.tenant_id, settings.reader_client_id, self.assertion, **bounds
        )
        self.blob = BlobReader.connect(
            settings.blob_account_url,
            settings.blob_container,
            self.credential,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.call_timeout,
            retry_policy=NoTokenRetry(),
        )

    def answer(self, event: Any) -> dict[str, Any]:
        """The answer to one event; raises CrossCloudError for refusals."""
        action, name = _parse(event)
        self._token()
        try:
            if action == "list":
                blobs, truncated = self.blob.list_names()
                return {
                    "azure": {
                        "container": self.settings.blob_container,
                        "blobs": blobs,
                        "truncated": truncated,
                    }
                }
            return {"azure": self.blob.read(name)}
        except errors.CrossCloudError:
            raise
        except Exception as exc:
            raise failures.from_blob(exc, self.settings, name) from None

    def _token(self) -> None:
        """Make sure a storage token is at hand (MSAL's cache while warm), so that a refusal is
        reported as what it is (STS or Entra) rather than as a failed storage call."""
        try:
            self.credential.get_token(STORAGE_SCOPE)
        except (ClientError, BotoCoreError) as exc:
            raise failures.from_sts(exc) from None
        except ClientAuthenticationError as exc:
            raise failures.from_entra(exc, self.settings, self.assertion.last) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise failures.entra_unreachable(exc) from None


def _parse(event: Any) -> tuple[str, str]:
    if not isinstance(event, dict) or event.get("action") not in ("list", "read"):
        raise errors.CrossCloudError(
            400,
            "bad_request",
            'The event must be {"action": "list"} or {"action": "read", "name": ...}.',
            "Invoke with one of the two event shapes.",
        )
    if event["action"] == "list":
        return "list", ""
    name = event.get("name")
    if not isinstance(name, str) or not name:
        # The function's own message names its HTTP route; the Lambda's caller sends an event.
        raise errors.bad_name(BadName('"read" needs "name": the blob name (see "list")'))
    try:
        return "read", validate_name(name)
    except BadName as exc:
        raise errors.bad_name(exc) from None


_state_lock = threading.Lock()
_reader: Reader | None = None
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="crosscloud-lambda")


def current() -> tuple[Reader, bool]:
    """The process's Reader (built on first use) and whether it was just built (cold)."""
    global _reader
    with _state_lock:
        if _reader is None:
            _reader = Reader(LambdaSettings.from_env())
            return _reader, True
        return _reader, False


def reset() -> None:
    """Forget the process state (tests start cold)."""
    global _reader
    with _state_lock:
        _reader = None


def handle(event: Any, remaining_ms: int | None) -> dict[str, Any]:
    """One invocation: the answer within the Lambda's remaining time, and one JSON log line."""
    redaction.install()
    started = time.monotonic()
    budget = (
        DEFAULT_BUDGET_SECONDS if remaining_ms is None else remaining_ms / 1000 - MARGIN_SECONDS
    )
    cold = False
    calls_before = 0
    reader: Reader | None = None
    try:
        reader, cold = current()
        calls_before = reader.assertion.calls
        if budget <= 0:
            raise failures.timeout(max(budget, 0.0))
        future = _pool.submit(reader.answer, event)
        try:
            body = {"status": 200, **future.result(timeout=budget)}
        except FutureTimeout:
            # The call ends by itself within its own timeouts; nobody waits for it.
            raise failures.timeout(budget) from None
    except errors.CrossCloudError as exc:
        body = {"status": exc.status, **exc.body()}
    except SettingsError as exc:
        body = {
            "status": 500,
            "error": {
                "code": "misconfigured",
                "message": str(exc),
                "hint": "The Pulumi program sets these variables; deploy again.",
            },
        }
    except Exception:
        log.exception("unexpected failure")
        body = {"status": 500, **errors.internal().body()}
    record = {
        "action": event.get("action") if isinstance(event, dict) else None,
        "status": body["status"],
        "code": body.get("error", {}).get("code"),
        "cold": cold,
        "aws_token_calls": (reader.assertion.calls - calls_before) if reader else 0,
        "duration_ms": round((time.monotonic() - started) * 1000),
    }
    log.warning(json.dumps(record))
    return body
