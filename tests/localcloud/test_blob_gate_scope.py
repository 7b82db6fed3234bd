"""The Blob gate honours Storage Blob Data Reader assigned at container scope: reads in that
container only, no writes, nothing in another container (as ARM scopes
`.../blobServices/default/containers/<name>`)."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from localcloud.blob_gate import BlobGate
from localcloud.certs import make_tls_files

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWKS = {"keys": [{**RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k"}]}


def _bearer(oid: str) -> str:
    now = int(time.time())
    claims = {"oid": oid, "nbf": now, "exp": now + 300}
    return "Bearer " + jwt.encode(claims, KEY, "RS256", headers={"kid": "k"})


@pytest.fixture(scope="module")
def gate(tmp_path_factory) -> BlobGate:
    tls = make_tls_files(tmp_path_factory.mktemp("tls"))
    gate = BlobGate("https://127.0.0.1:1/devstoreaccount1", tls, jwks=JWKS)
    gate.container_readers["reader"] = {"mycontainer"}
    return gate


@pytest.mark.parametrize(
    ("method", "path", "refusal"),
    [
        ("GET", "/devstoreaccount1/mycontainer?restype=container&comp=list", None),
        ("GET", "/devstoreaccount1/mycontainer/hello.txt", None),
        ("HEAD", "/devstoreaccount1/mycontainer/hello.txt", None),
        ("PUT", "/devstoreaccount1/mycontainer/hello.txt", "AuthorizationPermissionMismatch"),
        ("GET", "/devstoreaccount1/other/hello.txt", "AuthorizationPermissionMismatch"),
        ("GET", "/devstoreaccount1?comp=list", "AuthorizationPermissionMismatch"),
        ("GET", "/devstoreaccount1/mycontainerx/a", "AuthorizationPermissionMismatch"),
    ],
)
def test_a_container_scoped_reader_reads_that_container_only(gate, method, path, refusal):
    assert gate.authorise(method, _bearer("reader"), path) == ("reader", refusal)


def test_without_a_path_container_scope_grants_nothing(gate):
    assert gate.authorise("GET", _bearer("reader")) == ("reader", "AuthorizationPermissionMismatch")
