"""Fixtures shared by the shipping tests: a local CA and tiny wheels to build packages from."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest

from localcloud.certs import TlsFiles, make_tls_files
from localcloud.cloud import local_package, unpack
from shipping.build import BuiltPackage


@pytest.fixture(scope="session")
def app_package() -> BuiltPackage:
    """The package the local cloud runs: function_src built for this Python (pip needs PyPI the
    first time; then cached in .build/ by content hash, shared with the e2e tier)."""
    return local_package()


@pytest.fixture(scope="session")
def app_root(app_package: BuiltPackage, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`app_package` unpacked, as a function host sees it."""
    return unpack(app_package.path, tmp_path_factory.mktemp("wwwroot"))


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def make_wheel(
    directory: Path,
    name: str,
    tag: str,
    files: dict[str, bytes],
    scripts: dict[str, bytes] | None = None,
    version: str = "1.0",
) -> Path:
    """Write a minimal valid wheel (METADATA, WHEEL, RECORD) and return its path."""
    dist = name.replace("-", "_")
    dist_info = f"{dist}-{version}.dist-info"
    pure = tag.endswith("-none-any")
    entries = dict(files)
    for script, content in (scripts or {}).items():
        entries[f"{dist}-{version}.data/scripts/{script}"] = content
    entries[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    )
    entries[f"{dist_info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: crosscloud-tests\n"
        f"Root-Is-Purelib: {str(pure).lower()}\nTag: {tag}\n"
    ).encode()
    record = []
    for path, content in entries.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(content)}")
    record.append(f"{dist_info}/RECORD,,")
    entries[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, content in entries.items():
            archive.writestr(path, content)
    return wheel


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local package index: pip installs from it with --no-index, so these builds are offline.

    - cc-fixture-pure: pure Python, carries a stray __pycache__ and a console script (whose
      shebang pip rewrites to this machine's interpreter: junk the builder must drop);
    - cc-fixture-native: a CPython 3.12 manylinux2014 x86_64 wheel (no 3.11 build exists);
    - cc-fixture-windows: only a win_amd64 wheel, which a Linux package must refuse;
    - botocore: a stand-in with the layout of botocore's `data/` (shared files at the top, one
      folder per service), for the builder to cut down to the app's AWS_SERVICES.
    """
    directory = tmp_path_factory.mktemp("wheelhouse")
    make_wheel(
        directory,
        "cc-fixture-pure",
        "py3-none-any",
        {
            "cc_fixture_pure/__init__.py": b"VALUE = 'pure'\n",
            "cc_fixture_pure/__pycache__/__init__.cpython-312.pyc": b"\x00stale bytecode",
        },
        scripts={"cc-fixture": b"#!python\nprint('hi')\n"},
    )
    make_wheel(
        directory,
        "cc-fixture-native",
        "cp312-cp312-manylinux2014_x86_64",
        {"cc_fixture_native/_speedups.cpython-312-x86_64-linux-gnu.so": b"\x7fELF fake"},
    )
    make_wheel(
        directory,
        "cc-fixture-windows",
        "cp312-cp312-win_amd64",
        {"cc_fixture_windows/_native.pyd": b"MZ fake"},
    )
    make_wheel(
        directory,
        "botocore",
        "py3-none-any",
        {
            "botocore/__init__.py": b"",
            "botocore/data/endpoints.json": b"{}",
            "botocore/data/_retry.json": b"{}",
            "botocore/data/sts/2011-06-15/service-2.json.gz": b"sts model",
            "botocore/data/s3/2006-03-01/service-2.json.gz": b"s3 model",
            "botocore/data/s3/2006-03-01/endpoint-rule-set-1.json.gz": b"s3 rules",
            "botocore/data/ec2/2016-11-15/service-2.json.gz": b"ec2 model",
            "botocore/data/iam/2010-05-08/service-2.json.gz": b"iam model",
        },
    )
    return directory
