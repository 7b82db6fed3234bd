"""The function app's deployment package: a deterministic zip, cached by what goes into it.

Layout (what the Python worker on Flex Consumption loads, DESIGN.md "code deployment"):
`function_app.py`, `host.json`, `requirements.txt` and the app's own modules at the root, and the
dependencies, installed for Linux x86_64 and the app's Python, under
`.python_packages/lib/site-packages`. One Deploy runs with `RemoteBuild=false`, so nothing is
built on the platform: the zip must already hold every wheel the app imports.

Byte-identical output for identical input: entries sorted, every timestamp 1980-01-01 (the zip
epoch), explicit Unix modes (0o644 files, 0o755 directories: zip entries without mode bits load
zero functions on Flex), one compression method and level, no bytecode, no console scripts. The
zip is cached under `.build/` with a key over the sources, the requirements, the Python version,
pip's version and this file, so `pulumi preview` reuses it instead of reinstalling every run.

`python -m shipping.build [--python 3.12]` builds it and prints `<path> <sha256>` as its last line.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from components.settings import PYTHON_VERSIONS, Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE_DIR = REPO_ROOT / "function_src"
DEFAULT_CACHE_DIR = REPO_ROOT / ".build"

PLATFORM = "manylinux2014_x86_64"
"""glibc 2.17+ x86_64: runs on the Flex Consumption Linux workers (and accepts manylinux1/2010)."""
SITE_PACKAGES = ".python_packages/lib/site-packages"
REQUIRED_FILES = ("function_app.py", "host.json", "requirements.txt")

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
"""The earliest timestamp a zip entry can hold; any fixed value makes the bytes reproducible."""
FILE_MODE = stat.S_IFREG | 0o644
DIR_MODE = stat.S_IFDIR | 0o755
_UNIX = 3  # ZipInfo.create_system: 3 = Unix, so extractors honour the mode bits in external_attr
COMPRESSION = zipfile.ZIP_DEFLATED
COMPRESS_LEVEL = 6

# Never shipped from the source folder: bytecode, tests, local-only settings, virtualenvs, and
# the folder a local `pip install --target .python_packages` would leave behind.
_EXCLUDED_DIR_NAMES = frozenset({"__pycache__", "tests", ".venv", "venv", ".python_packages"})
_EXCLUDED_FILE_NAMES = frozenset({"local.settings.json"})
_BYTECODE_SUFFIXES = (".pyc", ".pyo")
_PYTHON_VERSION = re.compile(r"^3\.\d{1,2}$")


class BuildError(RuntimeError):
    """The package cannot be built; the message says why (missing file, pip's own error...)."""


@dataclass(frozen=True)
class BuiltPackage:
    """A built package: its path and the sha256 of its bytes (what keys the deployment)."""

    path: Path
    sha256: str
    from_cache: bool = field(default=False, compare=False)
    """True when the cached zip was reused; not part of equality (same bytes, same package)."""


def source_files(source_dir: Path) -> list[tuple[str, Path]]:
    """(zip name, file) for every file of `source_dir` that ships, sorted by zip name.

    Hidden files and folders (`.vscode`, `.funcignore`...) and the exclusions above are skipped.
    """
    found: list[tuple[str, Path]] = []
    for root, dir_names, file_names in os.walk(source_dir):
        # Pruning in place stops os.walk from descending into excluded folders.
        dir_names[:] = [
            d for d in dir_names if d not in _EXCLUDED_DIR_NAMES and not d.startswith(".")
        ]
        for name in file_names:
            if (
                name in _EXCLUDED_FILE_NAMES
                or name.startswith(".")
                or name.endswith(_BYTECODE_SUFFIXES)
            ):
                continue
            path = Path(root, name)
            found.append((path.relative_to(source_dir).as_posix(), path))
    return sorted(found)


def cache_key(source_dir: Path, python_version: str) -> str:
    """Hex digest over everything that decides the package's bytes.

    Sources and requirements (names and contents), the target Python and platform, pip's version
    (it lays out the installed files) and this builder's own code.
    """
    digest = hashlib.sha256()

    def add(label: str, value: bytes) -> None:
        # Length-prefixed so that no two different inputs can concatenate to the same stream.
        digest.update(f"{label}:{len(value)}:".encode())
        digest.update(value)

    add("builder", Path(__file__).read_bytes())
    add("pip", importlib.metadata.version("pip").encode())
    add("python", python_version.encode())
    add("platform", PLATFORM.encode())
    for name, path in source_files(source_dir):
        add("name", name.encode())
        add("content", path.read_bytes())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks (packages are tens of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_package(
    source_dir: Path, python_version: str, cache_dir: Path = DEFAULT_CACHE_DIR
) -> BuiltPackage:
    """The package for `source_dir` and `python_version`: from the cache, or built into it."""
    source_dir = source_dir.resolve()
    if not _PYTHON_VERSION.match(python_version):
        raise BuildError(f"python_version must look like '3.12', got {python_version!r}")
    missing = [name for name in REQUIRED_FILES if not (source_dir / name).is_file()]
    if missing:
        raise BuildError(f"{source_dir} is not a function app: missing {', '.join(missing)}")

    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{source_dir.name}-py{python_version}"
    zip_path = cache_dir / f"{stem}.zip"
    key_path = cache_dir / f"{stem}.key.json"
    key = cache_key(source_dir, python_version)

    cached = _cached(zip_path, key_path, key)
    if cached:
        return cached

    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".tmp-") as work:
        site_packages = Path(work, "site-packages")
        _install_dependencies(source_dir / "requirements.txt", site_packages, python_version)
        _prune(site_packages)
        entries = source_files(source_dir) + [
            (f"{SITE_PACKAGES}/{name}", path) for name, path in _all_files(site_packages)
        ]
        staged = Path(work, "package.zip")
        write_zip(entries, staged)
        sha256 = file_sha256(staged)
        # Zip first, key last, each by an atomic rename: a crash in between leaves a key that
        # does not match and the next run rebuilds instead of trusting a half-written package.
        key_path.unlink(missing_ok=True)
        os.replace(staged, zip_path)
    tmp_key = key_path.with_suffix(".tmp")
    tmp_key.write_text(json.dumps({"key": key, "sha256": sha256}, indent=2) + "\n")
    os.replace(tmp_key, key_path)
    return BuiltPackage(zip_path, sha256)


def _cached(zip_path: Path, key_path: Path, key: str) -> BuiltPackage | None:
    """The cached package if it was built from `key` and its bytes are still what was built."""
    try:
        recorded = json.loads(key_path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(recorded, dict) or recorded.get("key") != key or not zip_path.is_file():
        return None
    sha256 = file_sha256(zip_path)
    if sha256 != recorded.get("sha256"):
        return None
    return BuiltPackage(zip_path, sha256, from_cache=True)


def _install_dependencies(requirements: Path, target: Path, python_version: str) -> None:
    """pip-install `requirements` into `target` as wheels for Linux x86_64 and `python_version`.

    `--only-binary=:all:` is what lets pip install for another platform/Python than its own
    (https://pip.pypa.io/en/stable/cli/pip_install/#cmdoption-platform) and guarantees no sdist is
    compiled for the build machine. `--no-compile`: bytecode is for the build machine's Python.
    """
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--no-compile",
        "--target",
        str(target),
        "--platform",
        PLATFORM,
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "--only-binary=:all:",
        "--requirement",
        str(requirements),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BuildError(
            f"pip could not install {requirements} for {PLATFORM} / Python {python_version} "
            f"(exit {result.returncode}); a dependency without a matching wheel cannot ship:\n"
            f"{result.stderr.strip() or result.stdout.strip()}"
        )


def _prune(site_packages: Path) -> None:
    """Remove what must not ship, so the result depends only on the wheels.

    - `bin/`: console scripts whose shebang names this machine's interpreter (the worker never
      runs them);
    - `__pycache__` / `*.pyc` that some wheels carry (compiled for whoever built the wheel);
    - RECORD lines for files outside site-packages (`../../bin/...`): those files are gone, and
      their hashes cover the machine-specific shebangs.
    """
    shutil.rmtree(site_packages / "bin", ignore_errors=True)
    for cache in list(site_packages.rglob("__pycache__")):
        shutil.rmtree(cache)
    for suffix in _BYTECODE_SUFFIXES:
        for compiled in site_packages.rglob(f"*{suffix}"):
            compiled.unlink()
    for record in site_packages.glob("*.dist-info/RECORD"):
        lines = record.read_text().splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith("../")]
        if kept != lines:
            record.write_text("".join(kept))


def _all_files(directory: Path) -> list[tuple[str, Path]]:
    return sorted(
        (path.relative_to(directory).as_posix(), path)
        for path in directory.rglob("*")
        if path.is_file()
    )


def _directories(names: Iterable[str]) -> set[str]:
    """Every parent folder of `names`, as zip directory entries ("a/", "a/b/")."""
    folders: set[str] = set()
    for name in names:
        parts = name.split("/")[:-1]
        folders.update("/".join(parts[: i + 1]) + "/" for i in range(len(parts)))
    return folders


def write_zip(entries: list[tuple[str, Path]], destination: Path) -> None:
    """Write `entries` (zip name, file) and their folders as a reproducible zip."""
    names = [name for name, _ in entries]
    if len(set(names)) != len(names):
        raise BuildError("two files map to the same name in the package")
    contents = dict(entries)
    with zipfile.ZipFile(destination, "w") as archive:
        # A folder sorts before its files ("a/" is a prefix of "a/b"), which extractors expect.
        for name in sorted(set(names) | _directories(names)):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.create_system = _UNIX
            if name.endswith("/"):
                info.external_attr = DIR_MODE << 16
                archive.writestr(info, b"", compress_type=zipfile.ZIP_STORED)
            else:
                info.external_attr = FILE_MODE << 16
                archive.writestr(
                    info,
                    contents[name].read_bytes(),
                    compress_type=COMPRESSION,
                    compresslevel=COMPRESS_LEVEL,
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shipping.build",
        description="Build (or reuse) the function app package; last line: <path> <sha256>.",
    )
    parser.add_argument(
        "--python",
        default=Settings().python_version,
        choices=PYTHON_VERSIONS,
        help="Python of the function apps (crosscloud:pythonVersion; default %(default)s)",
    )
    parser.add_argument(
        "--source", type=Path, default=DEFAULT_SOURCE_DIR, help="function app folder (%(default)s)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="build cache (%(default)s)"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        package = build_package(args.source, args.python, args.cache_dir)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    how = "reused from cache" if package.from_cache else "built"
    size_mb = package.path.stat().st_size / 1e6
    print(
        f"{how}: {size_mb:.1f} MB for Python {args.python} in {time.monotonic() - started:.1f}s",
        file=sys.stderr,
        flush=True,
    )
    print(f"{package.path} {package.sha256}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
