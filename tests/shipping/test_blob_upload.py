"""The blob upload provider against Azurite over HTTPS with OAuth (bearer tokens, no keys).

Azurite in `--oauth basic` mode accepts JWTs whose `iss` starts with https://sts.windows.net/ and
whose `aud` is a storage audience, without checking signatures; a token for another audience is
refused with 403, which is how these tests stand in for a role assignment that has not
propagated yet. Provider methods are called directly, as the Pulumi engine would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dill
import jwt
import pytest
from azure.core.credentials import AccessToken
from azure.storage.blob import ContainerClient
from pulumi.dynamic.dynamic import serialize_provider

from localcloud.azurite import Azurite
from localcloud.certs import TlsFiles
from shipping.blob_upload import (
    BlobUploadError,
    BlobUploadProvider,
    MissingRole,
    describe_files,
)
from shipping.retry import Backoff

TENANT = "11111111-2222-3333-4444-555555555555"


class FakeEntraCredential:
    """Hands out unsigned-checked JWTs shaped like Entra v1 storage tokens.

    The first `refusals` tokens carry the ARM audience, which Azurite refuses (403), the way the
    real service refuses a caller whose role assignment has not reached it yet. Tokens live for
    two minutes: under azure-core's five-minute refresh margin, so each request asks for a new
    one and a refused token is never reused.
    """

    def __init__(self, refusals: int = 0) -> None:
        self.refusals = refusals
        self.calls = 0

    def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        assert scopes == ("https://storage.azure.com/.default",)
        self.calls += 1
        now = int(time.time())
        audience = "https://storage.azure.com"
        if self.refusals > 0:
            self.refusals -= 1
            audience = "https://management.azure.com"
        claims = {
            "iss": f"https://sts.windows.net/{TENANT}/",
            "aud": audience,
            "oid": "deployer-object-id",
            "iat": now,
            "nbf": now - 60,
            "exp": now + 120,
        }
        return AccessToken(jwt.encode(claims, "azurite-checks-no-signature-" * 2), now + 120)


@pytest.fixture(scope="module")
def azurite(tls: TlsFiles) -> Iterator[Azurite]:
    with Azurite(tls) as running:
        yield running


@pytest.fixture
def container(
    azurite: Azurite, tls: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ContainerClient]:
    """A fresh container for one test; the SDK trusts the test CA via REQUESTS_CA_BUNDLE."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_cert))
    # Closed afterwards: Azurite's shutdown waits for open keep-alive connections.
    with ContainerClient(
        azurite.blob_endpoint, f"c{uuid.uuid4().hex[:12]}", credential=FakeEntraCredential()
    ) as client:
        client.create_container()
        yield client


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    folder = tmp_path / "samples"
    (folder / "nested").mkdir(parents=True)
    (folder / "hello.txt").write_text("hello from azure\n")
    (folder / "only-azure.txt").write_text("azure only\n")
    (folder / "nested" / "deep.txt").write_text("deep\n")
    (folder / ".hidden").write_text("never uploaded\n")
    return folder


QUICK = Backoff(first_delay=0.01, max_delay=0.05, give_up_after=5)


def provider(credential: FakeEntraCredential | None = None, **overrides: Any) -> BlobUploadProvider:
    settings: dict[str, Any] = {"backoff": QUICK, **overrides}
    return BlobUploadProvider(credential=credential or FakeEntraCredential(), **settings)


def inputs(container: ContainerClient, folder: Path) -> dict[str, Any]:
    return {
        "account_url": container.url.rsplit("/", 1)[0],
        "container_name": container.container_name,
        "files": describe_files(folder),
    }


def blobs(container: ContainerClient) -> dict[str, bytes]:
    return {
        blob.name: container.download_blob(blob.name).readall() for blob in container.list_blobs()
    }


def test_create_uploads_every_file_with_its_hash(container: ContainerClient, samples: Path) -> None:
    result = provider().create(inputs(container, samples))

    assert blobs(container) == {
        "hello.txt": b"hello from azure\n",
        "only-azure.txt": b"azure only\n",
        "nested/deep.txt": b"deep\n",
    }
    properties = container.get_blob_client("hello.txt").get_blob_properties()
    assert properties.content_settings.content_type == "text/plain"
    assert properties.metadata == {"sha256": hashlib.sha256(b"hello from azure\n").hexdigest()}
    assert result.outs["names"] == ["hello.txt", "nested/deep.txt", "only-azure.txt"]
    assert result.outs["sha256s"]["nested/deep.txt"] == hashlib.sha256(b"deep\n").hexdigest()
    assert "eyJ" not in json.dumps(result.outs)  # no JWT anywhere in what goes to state


def test_update_uploads_changes_and_removes_dropped_files(
    container: ContainerClient, samples: Path
) -> None:
    uploader = provider()
    created = uploader.create(inputs(container, samples))
    unchanged_etag = container.get_blob_client("only-azure.txt").get_blob_properties().etag

    (samples / "hello.txt").write_text("hello again\n")
    (samples / "nested" / "deep.txt").unlink()
    (samples / "new.txt").write_text("new\n")
    news = inputs(container, samples)
    assert uploader.diff(created.id, created.outs, news).changes is True
    updated = uploader.update(created.id, created.outs, news)

    assert blobs(container) == {
        "hello.txt": b"hello again\n",
        "only-azure.txt": b"azure only\n",
        "new.txt": b"new\n",
    }
    etag = container.get_blob_client("only-azure.txt").get_blob_properties().etag
    assert etag == unchanged_etag  # not uploaded again
    assert updated.outs["names"] == ["hello.txt", "new.txt", "only-azure.txt"]


def test_diff_follows_content_not_paths_or_tokens(
    container: ContainerClient, samples: Path, tmp_path: Path
) -> None:
    created = provider().create(inputs(container, samples))
    copy = tmp_path / "copy"
    copy.mkdir()
    for name, file in describe_files(samples).items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes(Path(file["path"]).read_bytes())

    other_machine = provider(FakeEntraCredential())  # another token, another checkout
    same = inputs(container, copy)
    assert other_machine.diff(created.id, created.outs, same).changes is False

    moved = other_machine.diff(created.id, created.outs, {**same, "container_name": "other"})
    assert moved.changes is True and moved.replaces == ["container_name"]


def test_delete_removes_the_blobs_and_tolerates_their_absence(
    container: ContainerClient, samples: Path
) -> None:
    uploader = provider()
    created = uploader.create(inputs(container, samples))
    container.upload_blob("not-ours.txt", b"someone else's")

    uploader.delete(created.id, created.outs)
    assert list(blobs(container)) == ["not-ours.txt"]
    uploader.delete(created.id, created.outs)  # already gone: still fine


def test_refusals_while_the_role_propagates_are_retried(
    container: ContainerClient, samples: Path
) -> None:
    credential = FakeEntraCredential(refusals=3)
    provider(credential).create(inputs(container, samples))
    assert len(blobs(container)) == 3
    assert credential.refusals == 0 and credential.calls >= 6  # 3 refused + 3 uploads


def test_a_refusal_that_outlasts_the_backoff_names_the_missing_role(
    container: ContainerClient, samples: Path
) -> None:
    credential = FakeEntraCredential(refusals=10**6)
    backoff = Backoff(first_delay=0.01, max_delay=0.02, give_up_after=0.3)
    with pytest.raises(MissingRole, match="Storage Blob Data Contributor") as failure:
        provider(credential, backoff=backoff).create(inputs(container, samples))
    assert container.container_name in str(failure.value)
    assert blobs(container) == {}


def test_a_file_changed_after_hashing_is_not_uploaded(
    container: ContainerClient, samples: Path
) -> None:
    props = inputs(container, samples)
    (samples / "hello.txt").write_text("edited after the program ran\n")
    with pytest.raises(BlobUploadError, match="changed after the program hashed it"):
        provider().create(props)


def test_describe_files_names_blobs_by_relative_path(samples: Path) -> None:
    files = describe_files(samples)
    assert sorted(files) == ["hello.txt", "nested/deep.txt", "only-azure.txt"]
    assert files["hello.txt"]["sha256"] == hashlib.sha256(b"hello from azure\n").hexdigest()


def test_check_insists_on_https(samples: Path) -> None:
    news = {
        "account_url": "http://account.blob.core.windows.net",
        "container_name": "c",
        "files": describe_files(samples),
    }
    failures = BlobUploadProvider().check({}, news).failures
    assert [f.property for f in failures] == ["account_url"]


def test_the_pickled_provider_carries_no_credential() -> None:
    pickled = base64.b64decode(serialize_provider(provider()))  # what goes into state
    assert b"FakeEntraCredential" not in pickled
    restored = dill.loads(pickled)  # noqa: S301 - the bytes this test just made
    assert restored._credential is None and restored.backoff == QUICK
