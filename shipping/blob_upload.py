"""Upload a folder of files as blobs with an Entra token, as a Pulumi resource.

The data account has shared key access off, and `azure_native.storage.Blob` signs with account
keys (KeyBasedAuthenticationNotPermitted), so sample blobs go up through the data plane with the
deployer's own Entra identity (docs/design.md "Uploads with shared key off"): azure-storage-blob
with DefaultAzureCredential, fetched at create/update/delete time, never an input or output. The
deployer needs Storage Blob Data Contributor on the account; a fresh assignment takes minutes to
apply, so 401/403 are retried with bounded backoff before failing with a message naming the role.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic
from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import ContainerClient, ContentSettings
from pulumi.runtime import rpc

from shipping.build import file_sha256
from shipping.identity import EntraIdentityProvider
from shipping.retry import Backoff, retry

STORAGE_BLOB_DATA_CONTRIBUTOR_ROLE_ID = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
"""Built-in "Storage Blob Data Contributor": read, write and delete blobs."""

_AUTH_REFUSALS = (401, 403)
_REPLACE_ON = ("account_url", "container_name")


class BlobUploadError(RuntimeError):
    """The blobs could not be uploaded or removed; the message says why."""


class MissingRole(BlobUploadError):
    """The storage account kept refusing the deployer's token."""


def describe_files(source_dir: Path) -> dict[str, dict[str, str]]:
    """{blob name: {"path", "sha256"}} for every file under `source_dir` (hidden ones skipped).

    Blob names are the paths relative to `source_dir` with "/" separators.
    """
    files: dict[str, dict[str, str]] = {}
    for root, dir_names, file_names in os.walk(source_dir):
        dir_names[:] = sorted(d for d in dir_names if not d.startswith("."))
        for name in sorted(file_names):
            if name.startswith("."):
                continue
            path = Path(root, name)
            files[path.relative_to(source_dir).as_posix()] = {
                "path": str(path.resolve()),
                "sha256": file_sha256(path),
            }
    if not files:
        raise BlobUploadError(f"no files to upload in {source_dir}")
    return files


class BlobUploadProvider(EntraIdentityProvider):
    """Dynamic provider behind `BlobUpload` (credential handling: `EntraIdentityProvider`)."""

    def __init__(self, backoff: Backoff | None = None, credential: TokenCredential | None = None):
        super().__init__(credential)
        self.backoff = backoff or Backoff()

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        failures = []
        account_url = news.get("account_url")
        # Bearer tokens are only sent over HTTPS (the SDK refuses otherwise, later and vaguer).
        if (
            isinstance(account_url, str)
            and account_url != rpc.UNKNOWN
            and not account_url.startswith("https://")
        ):
            failures.append(
                pulumi.dynamic.CheckFailure("account_url", f"must be https: {account_url!r}")
            )
        files = news.get("files")
        if not isinstance(files, Mapping) or not files:
            failures.append(pulumi.dynamic.CheckFailure("files", "must name at least one file"))
        return pulumi.dynamic.CheckResult(news, failures)

    def diff(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        replaces = [key for key in _REPLACE_ON if olds.get(key) != news.get(key)]
        # Content decides, by hash: local paths differ between machines and mean nothing here.
        changed = replaces or olds.get("sha256s") != _hashes(news["files"])
        return pulumi.dynamic.DiffResult(
            changes=bool(changed), replaces=replaces, stables=[], delete_before_replace=False
        )

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        with self._container(props) as container:
            for name, file in sorted(props["files"].items()):
                self._upload(container, props, name, file)
        return pulumi.dynamic.CreateResult(
            f"{props['account_url'].rstrip('/')}/{props['container_name']}", _outputs(props)
        )

    def update(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        # Same account and container (anything else is a replacement, see diff).
        old_hashes: Mapping[str, str] = olds.get("sha256s") or {}
        with self._container(news) as container:
            for name, file in sorted(news["files"].items()):
                if old_hashes.get(name) != file["sha256"]:
                    self._upload(container, news, name, file)
            for name in sorted(set(old_hashes) - set(news["files"])):
                self._delete(container, news, name)
        return pulumi.dynamic.UpdateResult(_outputs(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with self._container(props) as container:
            for name in sorted(props.get("sha256s") or {}):
                self._delete(container, props, name)

    @contextmanager
    def _container(self, props: Mapping[str, Any]) -> Iterator[ContainerClient]:
        """A container client with this call's credential (the SDK fetches the token lazily)."""
        with (
            self.signed_in() as credential,
            ContainerClient(
                props["account_url"], props["container_name"], credential=credential
            ) as container,
        ):
            yield container

    def _upload(
        self,
        container: ContainerClient,
        props: Mapping[str, Any],
        name: str,
        file: Mapping[str, str],
    ) -> None:
        data = Path(file["path"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != file["sha256"]:
            raise BlobUploadError(
                f"{file['path']} changed after the program hashed it; run the deployment again"
            )
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        self._retrying(
            props,
            f"upload {name}",
            lambda: container.upload_blob(
                name,
                data,
                overwrite=True,
                content_settings=ContentSettings(content_type=content_type),
                # Lets anyone check a blob against the hash Pulumi recorded, without keys.
                metadata={"sha256": file["sha256"]},
            ),
        )

    def _delete(self, container: ContainerClient, props: Mapping[str, Any], name: str) -> None:
        def attempt() -> None:
            # Already gone (or the whole container is): the goal is reached.
            with suppress(ResourceNotFoundError):
                container.delete_blob(name)

        self._retrying(props, f"delete {name}", attempt)

    def _retrying(self, props: Mapping[str, Any], what: str, action: Callable[[], object]) -> None:
        def give_up(error: Exception) -> Exception:
            code = getattr(error, "error_code", None) or getattr(error, "status_code", "")
            return MissingRole(
                f"{props['account_url']} refused to {what} in container "
                f"{props['container_name']} after retrying for "
                f"{self.backoff.give_up_after:g}s ({code}). The deploying principal needs "
                f"'Storage Blob Data Contributor' (role {STORAGE_BLOB_DATA_CONTRIBUTOR_ROLE_ID}) "
                "on the storage account; a new assignment can take several minutes to apply."
            )

        retry(
            action,
            retry_if=lambda e: isinstance(e, HttpResponseError) and e.status_code in _AUTH_REFUSALS,
            give_up=give_up,
            backoff=self.backoff,
        )


def _hashes(files: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    return {name: file["sha256"] for name, file in files.items()}


def _outputs(props: Mapping[str, Any]) -> dict[str, Any]:
    """State after an upload: where, and which names with which hashes (never a token)."""
    hashes = _hashes(props["files"])
    return {
        "account_url": props["account_url"],
        "container_name": props["container_name"],
        "names": sorted(hashes),
        "sha256s": hashes,
    }


@dataclass
class BlobUploadArgs:
    """Inputs of a `BlobUpload`: the target container and the local folder to upload."""

    account_url: pulumi.Input[str]
    """The account's blob endpoint, e.g. `account.primary_endpoints.blob`."""
    container_name: pulumi.Input[str]
    source_dir: Path
    """Every file under it becomes a blob named by its relative path (hidden files skipped)."""


class BlobUpload(pulumi.dynamic.Resource, module="crosscloud", name="BlobUpload"):
    """Blobs uploaded from a local folder with the deployer's Entra identity.

    Type token: `pulumi-python:dynamic/crosscloud:BlobUpload`. Give it `depends_on` the container
    and the deployer's Storage Blob Data Contributor assignment on the account.
    """

    account_url: pulumi.Output[str]
    container_name: pulumi.Output[str]
    names: pulumi.Output[list[str]]
    sha256s: pulumi.Output[dict[str, str]]

    def __init__(
        self,
        resource_name: str,
        args: BlobUploadArgs,
        opts: pulumi.ResourceOptions | None = None,
        provider: BlobUploadProvider | None = None,
    ) -> None:
        props = {
            "account_url": args.account_url,
            "container_name": args.container_name,
            "files": describe_files(args.source_dir),
            "names": None,  # outputs: declared so the attributes exist
            "sha256s": None,
        }
        super().__init__(provider or BlobUploadProvider(), resource_name, props, opts)
