"""The two readers: one Blob container and one S3 bucket, each with a client built once.

Both use synchronous SDK clients (their requests-based transports honour REQUESTS_CA_BUNDLE and
AWS_CA_BUNDLE; the `.aio` clients do not); the service runs them side by side on a thread pool.
"""

from __future__ import annotations

import hashlib
from itertools import islice
from typing import Any

from azure.storage.blob import ContainerClient

from crosscloud_fn import errors

MAX_OBJECT_BYTES = 1024 * 1024
"""Largest object /api/read returns (it answers with the content as text)."""
MAX_LISTED = 1000
"""Names returned per store by /api/list (one page in both services)."""


def describe(name: str, data: bytes) -> dict[str, Any]:
    """`{"name", "size", "sha256", "text"}`; text is None when the bytes are not UTF-8."""
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {
        "name": name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "text": text,
    }


class BlobReader:
    def __init__(self, container: ContainerClient) -> None:
        self.container = container

    @property
    def container_name(self) -> str:
        return self.container.container_name

    def list_names(self) -> list[str]:
        return list(islice(self.container.list_blob_names(results_per_page=MAX_LISTED), MAX_LISTED))

    def read(self, name: str) -> dict[str, Any]:
        # One ranged GET for small blobs; the size is known before the rest is downloaded.
        downloader = self.container.download_blob(name, max_concurrency=1)
        if downloader.size > MAX_OBJECT_BYTES:
            raise errors.too_large("Azure", name, downloader.size, MAX_OBJECT_BYTES)
        return describe(name, downloader.readall())


class S3Reader:
    """Reads names as keys under `prefix`: the role may be limited to that prefix."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def list_keys(self) -> list[str]:
        answer = self.client.list_objects_v2(
            Bucket=self.bucket, Prefix=self.prefix, MaxKeys=MAX_LISTED
        )
        return [item["Key"].removeprefix(self.prefix) for item in answer.get("Contents", [])]

    def read(self, name: str) -> dict[str, Any]:
        answer = self.client.get_object(Bucket=self.bucket, Key=f"{self.prefix}{name}")
        body = answer["Body"]
        try:
            size = int(answer.get("ContentLength", 0))
            if size > MAX_OBJECT_BYTES:
                raise errors.too_large("AWS", name, size, MAX_OBJECT_BYTES)
            return describe(name, body.read())
        finally:
            body.close()
