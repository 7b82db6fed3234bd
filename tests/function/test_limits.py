"""Size is checked before bytes are fetched, and answers stay bounded (issue 10, items 4-5)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient
from crosscloud_fn import readers, service

from tests.function.conftest import (
    BUCKET,
    CONTAINER,
    MakeFunction,
    World,
    _StaticToken,
)
from tests.function.test_errors import assert_error

LIMIT = readers.MAX_OBJECT_BYTES


PutBoth = Callable[[str, bytes], None]


@pytest.fixture
def put_both(world: World) -> Iterator[PutBoth]:
    """Put the same bytes under a name in the container (as the deployer) and the bucket; the
    objects are deleted afterwards (other tests list the stores)."""
    expires_on = jwt.decode(world.deployer_token, options={"verify_signature": False})["exp"]
    blob = BlobServiceClient(
        world.gate.endpoint,
        credential=_StaticToken(world.deployer_token, expires_on),
        connection_verify=str(world.tls_ca),
    )
    container = blob.get_container_client(CONTAINER)
    s3 = world.aws.client("s3")
    names: list[str] = []

    def put(name: str, data: bytes) -> None:
        names.append(name)
        container.upload_blob(name, data, overwrite=True)
        s3.put_object(Bucket=BUCKET, Key=name, Body=data)

    yield put
    for name in names:
        container.delete_blob(name)
        s3.delete_object(Bucket=BUCKET, Key=name)
    blob.close()


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[Any]]]:
    """What the function's Blob client asked for and got: (x-ms-range, Content-Length) per GET,
    recorded by azure-core's raw_response_hook on the client the service builds."""
    seen: dict[str, list[Any]] = {"blob": [], "s3": []}

    def hook(response: Any) -> None:
        request, answer = response.http_request, response.http_response
        if request.method == "GET" and "comp=list" not in request.url:
            seen["blob"].append(
                (request.headers.get("x-ms-range"), int(answer.headers.get("Content-Length", 0)))
            )

    class RecordingContainerClient(ContainerClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, raw_response_hook=hook, **kwargs)

    monkeypatch.setattr(readers, "ContainerClient", RecordingContainerClient)
    yield seen


def record_s3_ranges(runtime: service.CrossCloud, seen: list[Any]) -> None:
    def before_send(request: Any, **_: Any) -> None:
        seen.append(request.headers.get("Range"))

    runtime.s3.client.meta.events.register("before-send.s3.GetObject", before_send)


# ---- 4. size before bytes -----------------------------------------------------------------------


def test_a_too_large_object_is_refused_on_its_size_alone(
    make_function: MakeFunction, put_both: PutBoth, wire: dict[str, list[Any]]
) -> None:
    put_both("large.bin", b"\x01" * (3 * LIMIT))
    fn = make_function("sami")
    record_s3_ranges(fn.runtime, wire["s3"])

    error = assert_error(fn.call("read", name="large.bin"), 413, "too_large")
    assert str(3 * LIMIT) in error["message"]
    # Blob: one ranged GET of FIRST_GET_BYTES (the SDK's default first GET is 32 MiB, which would
    # have pulled all 3 MiB into memory before the size check).
    assert wire["blob"] == [(f"bytes=0-{readers.FIRST_GET_BYTES - 1}", readers.FIRST_GET_BYTES)]
    # S3: asked for at most the limit + 1 byte, and the body was not read.
    assert wire["s3"] == [f"bytes=0-{LIMIT}".encode()] or wire["s3"] == [f"bytes=0-{LIMIT}"]


def test_objects_up_to_the_limit_are_read_whole(
    make_function: MakeFunction, put_both: PutBoth, wire: dict[str, list[Any]]
) -> None:
    data = bytes(range(256)) * (LIMIT // 256)  # exactly the limit, in two Blob GETs
    put_both("limit.bin", data)
    fn = make_function("sami")
    answer = fn.call("read", name="limit.bin")
    assert answer.status == 200, answer.body
    for cloud in ("azure", "aws"):
        assert answer.body[cloud]["size"] == LIMIT
        assert answer.body[cloud]["sha256"] == hashlib.sha256(data).hexdigest()
        assert base64.b64decode(answer.body[cloud]["base64"]) == data
    assert sum(length for _, length in wire["blob"]) == LIMIT


def test_an_empty_object_is_read(make_function: MakeFunction, put_both: PutBoth) -> None:
    # S3 answers 416 InvalidRange to a ranged GET of an empty object; the reader asks again.
    put_both("empty.txt", b"")
    answer = make_function("sami").call("read", name="empty.txt")
    assert answer.status == 200, answer.body
    assert answer.body["azure"]["size"] == answer.body["aws"]["size"] == 0
    assert answer.body["aws"]["text"] == ""


# ---- 5. bounded answers -------------------------------------------------------------------------


def test_nul_bytes_come_back_as_base64_not_escaped_text(
    make_function: MakeFunction, put_both: PutBoth
) -> None:
    data = b"\x00" * (256 * 1024)  # valid UTF-8, but 6 bytes of JSON ("\u0000") per byte
    put_both("zeros.bin", data)
    answer = make_function("sami").call("read", name="zeros.bin")
    assert answer.status == 200, answer.body
    for cloud in ("azure", "aws"):
        assert answer.body[cloud]["text"] is None
        assert base64.b64decode(answer.body[cloud]["base64"]) == data
    assert len(answer.text.encode()) <= 1.4 * 2 * len(data)


@pytest.mark.parametrize(
    "data",
    [
        b"\x1b[31mred\x1b[0m\n",  # terminal escapes
        "admin\u202e txt.exe\n".encode(),  # a bidi override: reads other than it displays
        b'"' * 3000,  # printable, but doubles when JSON-escaped
        b"caf\xe9\n",  # not UTF-8
    ],
    ids=["escape", "bidi", "quotes", "latin-1"],
)
def test_text_only_when_it_is_printable_and_small(
    make_function: MakeFunction, put_both: PutBoth, data: bytes
) -> None:
    put_both("odd.txt", data)
    answer = make_function("sami").call("read", name="odd.txt")
    assert answer.status == 200, answer.body
    obj = answer.body["aws"]
    assert obj["text"] is None
    assert base64.b64decode(obj["base64"]) == data
    assert len(json.dumps(obj)) <= 1.4 * len(data) + 200


def test_printable_text_stays_text(make_function: MakeFunction, put_both: PutBoth) -> None:
    data = 'Zeile 1\tüber\r\n日本語 and "quotes" \\ too\n'.encode()
    put_both("text.txt", data)
    answer = make_function("sami").call("read", name="text.txt")
    assert answer.body["azure"]["text"] == data.decode()
    assert answer.body["azure"]["base64"] is None


def test_list_says_when_it_was_cut(
    make_function: MakeFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_LISTED", 2)  # the real cut is 1,000 per store
    answer = make_function("sami").call("list")
    assert answer.status == 200, answer.body
    assert answer.body["azure"]["truncated"] is True and len(answer.body["azure"]["blobs"]) == 2
    assert answer.body["aws"]["truncated"] is True and len(answer.body["aws"]["keys"]) == 2
