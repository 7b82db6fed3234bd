"""The two readers: one Blob container and one S3 bucket, each with a client built once.

Both use synchronous SDK clients (their requests-based transports honour REQUESTS_CA_BUNDLE and
AWS_CA_BUNDLE; the `.aio` clients do not); the service runs them side by side on a thread pool.

Sizes are known before the bytes are fetched: the Blob client's first GET is at most
`FIRST_GET_BYTES` (azure-storage-blob's `max_single_get_size`, 32 MiB by default, is the size of
the first ranged GET that `download_blob` reads into memory), and S3 is asked for a range no
larger than the limit. A too-large object therefore costs a few KiB, not its size.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from azure.core.exceptions import ResourceModifiedError
from azure.storage.blob import ContainerClient
from botocore.exceptions import ClientError

from crosscloud_fn import errors
from crosscloud_fn.dependencies import BLOB, Unavailable
from crosscloud_fn.names import MAX_NAME_LENGTH, BadName

MAX_OBJECT_BYTES = 1024 * 1024
"""Largest object /api/read returns."""
FIRST_GET_BYTES = 64 * 1024
"""The Blob client's first (ranged) GET: objects up to this size cost one request, and a refused
object costs no more than this in memory."""
MAX_LISTED = 1000
"""Names returned per store by /api/list (one page in both services); `truncated` says when
there are more."""
# Not text: control characters (Unicode category Cc: C0, DEL, C1 incl. U+0085) other than tab,
# LF and CR, and the bidi overrides/isolates that make text display other than it reads
# (U+202A-U+202E, U+2066-U+2069; CVE-2021-42574 "Trojan Source").
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def describe(name: str, data: bytes) -> dict[str, Any]:
    """`{"name", "size", "sha256", "text", "base64"}`: exactly one of text and base64 is set.

    `text` only for printable UTF-8 whose JSON form is no larger than base64 would be (a file of
    quotes, backslashes or newlines doubles when escaped), so an answer is at most ~1.34x the
    object.
    """
    text: str | None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        # JSON spells `"`, `\\`, tab, CR and LF as two characters each (the other controls
        # are not text at all, above); everything else is written as its UTF-8 bytes.
        escaped = len(data) + sum(text.count(c) for c in '"\\\t\r\n')
        if _NOT_TEXT.search(text) or escaped > 4 * ((len(data) + 2) // 3):
            text = None
    return {
        "name": name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "text": text,
        "base64": None if text is not None else base64.b64encode(data).decode("ascii"),
    }


class BlobReader:
    def __init__(self, container: ContainerClient) -> None:
        self.container = container

    @classmethod
    def connect(
        cls,
        account_url: str,
        container: str,
        credential: Any,
        *,
        connect_timeout: float,
        read_timeout: float,
        retry_policy: Any,
    ) -> BlobReader:
        """A reader whose client waits and reads within bounds (the function's and the Lambda's
        alike): the given timeouts and retry policy, and a first GET of FIRST_GET_BYTES."""
        return cls(
            ContainerClient(
                account_url=account_url,
                container_name=container,
                credential=credential,
                connection_timeout=connect_timeout,
                read_timeout=read_timeout,
                retry_policy=retry_policy,
                # The first GET of download_blob (default 32 MiB, read into memory) is what
                # tells the size: keep it small so a too-large blob costs almost nothing.
                max_single_get_size=FIRST_GET_BYTES,
                max_chunk_get_size=MAX_OBJECT_BYTES,
            )
        )

    @property
    def container_name(self) -> str:
        return self.container.container_name

    def list_names(self) -> tuple[list[str], bool]:
        """Up to MAX_LISTED names, and whether there are more (a continuation token)."""
        pages = self.container.list_blob_names(results_per_page=MAX_LISTED).by_page()
        try:
            names = list(next(pages, []))[:MAX_LISTED]
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # The SDK's deserializer fails on a 2xx body that is not Storage's XML (an HTML
            # page from a proxy or a sign-in portal): a malformed answer, not our bug.
            raise Unavailable(
                BLOB, "its answer was not Blob Storage's", f"{type(exc).__name__}: {exc}", 1.0
            ) from exc
        return names, bool(pages.continuation_token)

    def read(self, name: str) -> dict[str, Any]:
        """The blob's bytes, all from one version of it.

        The first GET is a range of FIRST_GET_BYTES (set on the client as max_single_get_size);
        its Content-Range gives the blob's size before anything else is downloaded. The SDK
        makes the later ranged GETs conditional on the first one's ETag (If-Match,
        azure/storage/blob/_download.py), so a blob overwritten in between fails with 412
        (ResourceModifiedError) instead of mixing two versions: the read then starts over once.
        """
        for attempt in (1, 2):
            try:
                downloader = self.container.download_blob(name, max_concurrency=1)
            except ValueError as exc:
                # The SDK's own check of the first answer (e.g. "Required Content-Range response
                # header is missing"): a 2xx that is not Storage's (an HTML page from a proxy).
                raise Unavailable(
                    BLOB, "its answer was not Blob Storage's", f"ValueError: {exc}", 1.0
                ) from exc
            if downloader.size > MAX_OBJECT_BYTES:
                raise errors.too_large("Azure", name, downloader.size, MAX_OBJECT_BYTES)
            try:
                return describe(name, downloader.readall())
            except ResourceModifiedError as exc:
                if attempt == 2:
                    raise Unavailable(
                        BLOB,
                        "the blob changed while it was being read, twice in a row",
                        f"{type(exc).__name__}: {exc}",
                        1.0,
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


class S3Reader:
    """Reads names as keys under `prefix`: the role may be limited to that prefix."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def list_keys(self) -> tuple[list[str], bool]:
        """Up to MAX_LISTED keys (without the prefix), and whether S3 has more (IsTruncated)."""
        answer = self.client.list_objects_v2(
            Bucket=self.bucket, Prefix=self.prefix, MaxKeys=MAX_LISTED
        )
        keys = [item["Key"].removeprefix(self.prefix) for item in answer.get("Contents", [])]
        return keys, bool(answer.get("IsTruncated"))

    def read(self, name: str) -> dict[str, Any]:
        key = f"{self.prefix}{name}"
        if len(key.encode("utf-8")) > MAX_NAME_LENGTH:
            # S3's limit is on the whole key: the caller's name plus the configured prefix.
            raise errors.bad_name(
                BadName(
                    f"name is longer than {MAX_NAME_LENGTH - len(self.prefix.encode())} bytes "
                    "(S3 keys are at most 1024 bytes, including the key prefix)"
                )
            )
        try:
            # At most MAX_OBJECT_BYTES + 1 bytes are sent; Content-Range carries the full size.
            answer = self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes=0-{MAX_OBJECT_BYTES}"
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidRange":
                raise
            # S3 answers 416 to a range request on an empty object (RFC 9110 15.5.17: no range
            # overlaps zero bytes; AWS's behaviour per minio/minio#17713); ask without a range.
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        body = answer["Body"]
        try:
            size = _total_size(answer)
            if size > MAX_OBJECT_BYTES:
                raise errors.too_large("AWS", name, size, MAX_OBJECT_BYTES)
            data = body.read(MAX_OBJECT_BYTES + 1)
            if len(data) > MAX_OBJECT_BYTES:  # the headers understated the size
                raise errors.too_large("AWS", name, len(data), MAX_OBJECT_BYTES)
            return describe(name, data)
        finally:
            body.close()


def _total_size(answer: dict[str, Any]) -> int:
    """The object's size: after the slash of `Content-Range: bytes 0-N/SIZE`, else the length."""
    content_range = str(answer.get("ContentRange") or "")
    total = content_range.rpartition("/")[2]
    if total.isdigit():
        return int(total)
    return int(answer.get("ContentLength", 0))
