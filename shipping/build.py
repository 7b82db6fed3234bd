"""The function app's deployment package: a deterministic zip, cached by what goes into it.

Layout (what the Python worker on Flex Consumption loads, docs/design.md "Code deployment"):
`function_app.py`, `host.json`, `requirements.txt` and the app's own modules at the root, and the
dependencies, installed for Linux x86_64 and the app's Python, under
`.python_packages/lib/site-packages`. One Deploy runs with `RemoteBuild=false`, so nothing is
built on the platform: the zip must already hold every wheel the app imports.

Byte-identical output for identical input: entries sorted, every timestamp 1980-01-01 (the zip
epoch), explicit Unix modes (0o644 files, 0o755 directories: zip entries without mode bits load
zero functions on Flex), one compression method and level, no console scripts, and no bytecode
but the hash-based pycs that the target Python compiles for the package (shipping/bytecode.py:
Flex mounts the package read-only, so a package without them compiles on every cold start). The
zip is cached under `.build/` with a key over the sources, the requirements, the Python version,
pip's version, the compiling interpreter and the builder's code, so `pulumi preview` reuses it
instead of reinstalling every run.

Only what runs ships: pip installs the pinned requirements (function_src/requirements.txt names no
distribution the code does not import), then botocore's `data/` is cut down to the services the
code creates clients for, read from `crosscloud_fn/aws_services.py`, plus the shared files
beside them (endpoints, partitions, retry and default-configuration data). That is 15 MB of
service models the function never loads, out of a 25 MB package.

The local cloud runs this very package (localcloud/app_hosts.py), built for the running interpreter:
`local_target()`.

`python -m shipping.build [--python 3.12 | --local]` builds it, reports its size and prints
`<path> <sha256>` as its last line.
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import importlib.metadata
import json
import os
import platform as host_platform
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

from shipping import bytecode

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE_DIR = REPO_ROOT / "function_src"
DEFAULT_CACHE_DIR = REPO_ROOT / ".build"

# Flex runs 3.11-3.13, but the package is built on another machine with `pip --python-version`,
# and pip evaluates environment markers for the machine it runs on, not the target. The pinned
# azure-functions 1.26 requires Python < 3.13 and 2.x requires >= 3.13, so one requirements file
# cannot serve 3.13 as well until the function moves to azure-functions 2.x.
PYTHON_VERSIONS = ("3.11", "3.12")
"""Python versions the package can be built for (crosscloud:pythonVersion; components.settings
takes them from here, the builder being the layer below)."""
DEFAULT_PYTHON_VERSION = "3.12"
PLATFORM = "manylinux2014_x86_64"
"""glibc 2.17+ x86_64: runs on the Flex Consumption Linux workers (and accepts manylinux1/2010)."""
AWS_SERVICES_FILE = "crosscloud_fn/aws_services.py"
"""Where the app names the AWS services it calls (`AWS_SERVICES`), relative to the app root."""
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
_PYTHON_VERSION = re.compile(r"3\.\d{1,2}")
# Shipped but never imported, so not compiled (bytecode adds ~50% to the zip; a module without
# a pyc still imports, from source). Measured with `-X importtime` on local hosts serving
# /api/read, /api/list, /api/whoami and a 404, and guarded by tests/shipping/test_bytecode.py
# (host start plus every client the code creates: it fails if any of these is imported): the
# asyncio variants of the Azure SDKs (the function is synchronous) and the distributions
# imported only on paths the function never takes (cffi's and pycparser's C parser:
# cryptography loads only the compiled `_cffi_backend`; msal-extensions: persistent token
# caches). PyJWT is compiled: the front door checks every caller's token with it
# (crosscloud_fn/caller_auth.py).
NOT_COMPILED_PACKAGES = frozenset({"aio"})
"""Folder names anywhere in the package whose modules get no pyc."""
NOT_COMPILED_TOP_LEVEL = frozenset({"cffi", "pycparser", "msal_extensions"})
"""Top-level packages in site-packages whose modules get no pyc."""
PIP_TIMEOUT_SECONDS = 900.0
"""Longest a pip install may take. pip bounds each network read (`--timeout`, 15 s, 5 retries)
but not the whole install; a first build downloads ~25 MB of wheels, usually in well under 2 min."""


class BuildError(RuntimeError):
    """The package cannot be built; the message says why (missing file, pip's own error...)."""


@dataclass(frozen=True)
class BuiltPackage:
    """A built package: its path and the sha256 of its bytes (what keys the deployment)."""

    path: Path
    sha256: str
    from_cache: bool = field(default=False, compare=False)
    """True when the cached zip was reused; not part of equality (same bytes, same package)."""
    bytecode: str | None = field(default=None, compare=False)
    """The pycs' cache tag ("cpython-312"), None when the package ships without bytecode."""


def source_files(source_dir: Path) -> list[tuple[str, Path]]:
    """(zip name, file) for every file of `source_dir` that ships, sorted by zip name.

    Hidden files and folders (`.vscode`, `.funcignore`...) and the exclusions above are skipped.
    A symbolic link among the rest is refused: following it would ship whatever it points at on
    the building machine (a committed `notes.txt -> ~/.azure/...` would ship the deployer's
    token cache).
    """
    found: list[tuple[str, Path]] = []
    for root, dir_names, file_names in os.walk(source_dir):
        # Pruning in place stops os.walk from descending into excluded folders.
        dir_names[:] = [
            d for d in dir_names if d not in _EXCLUDED_DIR_NAMES and not d.startswith(".")
        ]
        for name in dir_names:
            _refuse_link(Path(root, name), source_dir)
        for name in file_names:
            if (
                name in _EXCLUDED_FILE_NAMES
                or name.startswith(".")
                or name.endswith(_BYTECODE_SUFFIXES)
            ):
                continue
            path = Path(root, name)
            _refuse_link(path, source_dir)
            found.append((path.relative_to(source_dir).as_posix(), path))
    return sorted(found)


def _refuse_link(path: Path, source_dir: Path) -> None:
    if path.is_symlink():
        raise BuildError(
            f"{path.relative_to(source_dir)} in {source_dir} is a symbolic link; the package "
            "ships only regular files of the app folder (copy the file in instead)"
        )


def local_target() -> tuple[str, str | None]:
    """(Python version, wheel platform) to build a package this machine can run.

    The running interpreter's version. On Linux x86_64 the platform is the deployed one, so the
    local cloud runs the very wheels that ship; elsewhere None: pip picks wheels for this machine
    (a macOS or arm64 laptop cannot load manylinux x86_64 extension modules).
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    linux_x86_64 = sys.platform == "linux" and host_platform.machine() == "x86_64"
    return version, PLATFORM if linux_x86_64 else None


def aws_services(source_dir: Path) -> tuple[str, ...] | None:
    """`AWS_SERVICES` of the app's AWS_SERVICES_FILE, or None if the app has no such file.

    Read from the syntax tree, not imported: the builder runs none of the app's code. The tuple
    may name module-level string constants (`STS = "sts"`) or hold literals.
    """
    path = source_dir / AWS_SERVICES_FILE
    if not path.is_file():
        return None
    constants: dict[str, object] = {}
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                constants[target.id] = _literal(node.value, constants)
    services = constants.get("AWS_SERVICES")
    if (
        not isinstance(services, tuple)
        or not services
        or not all(isinstance(s, str) and re.fullmatch(r"[a-z0-9-]+", s) for s in services)
    ):
        raise BuildError(
            f"{path}: AWS_SERVICES must be a non-empty tuple of botocore service names "
            f"(module-level strings), got {services!r}"
        )
    return services


def _literal(node: ast.expr, constants: dict[str, object]) -> object:
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.Tuple):
        return tuple(_literal(element, constants) for element in node.elts)
    if isinstance(node, ast.Constant):
        return node.value
    return None


def cache_key(
    source_dir: Path,
    python_version: str,
    platform: str | None = PLATFORM,
    compiler: bytecode.Compiler | None = None,
) -> str:
    """Hex digest over everything that decides the package's bytes.

    Sources and requirements (names and contents, the AWS service list among them), the target
    Python and platform, pip's version (it lays out the installed files), the interpreter that
    compiles the bytecode (its full version and magic number; "none" without one, so a package
    built without bytecode is rebuilt once an interpreter is found) and the builder's own code.
    """
    digest = hashlib.sha256()

    def add(label: str, value: bytes) -> None:
        # Length-prefixed so that no two different inputs can concatenate to the same stream.
        digest.update(f"{label}:{len(value)}:".encode())
        digest.update(value)

    add("builder", Path(__file__).read_bytes())
    add("bytecode", Path(bytecode.__file__).read_bytes())
    add("compiler", (f"{compiler.version}:{compiler.magic}" if compiler else "none").encode())
    add("pip", importlib.metadata.version("pip").encode())
    add("python", python_version.encode())
    # None: this machine's own wheels, which depend on the machine and the interpreter build.
    add("platform", (platform or f"native:{sys.implementation.cache_tag}:{_machine()}").encode())
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


def _machine() -> str:
    return f"{sys.platform}-{host_platform.machine()}"


def build_package(
    source_dir: Path,
    python_version: str,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    platform: str | None = PLATFORM,
) -> BuiltPackage:
    """The package for `source_dir`, `python_version` and the wheel `platform`: from the cache,
    or built into it. `platform` None means this machine's own wheels (see `local_target`)."""
    source_dir = source_dir.resolve()
    if not _PYTHON_VERSION.fullmatch(python_version):
        raise BuildError(f"python_version must look like '3.12', got {python_version!r}")
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if platform is None and python_version != running:
        raise BuildError(
            f"a package with this machine's wheels is for the running Python {running}, "
            f"not {python_version}"
        )
    missing = [name for name in REQUIRED_FILES if not (source_dir / name).is_file()]
    if missing:
        raise BuildError(f"{source_dir} is not a function app: missing {', '.join(missing)}")

    cache_dir.mkdir(parents=True, exist_ok=True)
    services = aws_services(source_dir)
    stem = f"{source_dir.name}-py{python_version}" + ("" if platform else f"-{_machine()}")
    zip_path = cache_dir / f"{stem}.zip"
    key_path = cache_dir / f"{stem}.key.json"
    compiler = bytecode.find_compiler(python_version)
    key = cache_key(source_dir, python_version, platform, compiler)

    cached = _cached(zip_path, key_path, key)
    if cached:
        return cached

    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".tmp-") as work:
        site_packages = Path(work, "site-packages")
        _install_dependencies(
            source_dir / "requirements.txt", site_packages, python_version, platform
        )
        _prune(site_packages)
        _keep_botocore_services(site_packages, services)
        _drop_record_lines_of_removed_files(site_packages)
        entries = source_files(source_dir) + [
            (f"{SITE_PACKAGES}/{name}", path) for name, path in _all_files(site_packages)
        ]
        if compiler:
            entries += _compiled(compiler, entries, Path(work, "bytecode"))
        staged = Path(work, "package.zip")
        write_zip(entries, staged)
        sha256 = file_sha256(staged)
        # Zip first, key last, each by an atomic rename: a crash in between leaves a key that
        # does not match and the next run rebuilds instead of trusting a half-written package.
        key_path.unlink(missing_ok=True)
        os.replace(staged, zip_path)
    tmp_key = key_path.with_suffix(".tmp")
    tag = compiler.cache_tag if compiler else None
    tmp_key.write_text(json.dumps({"key": key, "sha256": sha256, "bytecode": tag}, indent=2) + "\n")
    os.replace(tmp_key, key_path)
    return BuiltPackage(zip_path, sha256, bytecode=tag)


def _compiled(
    compiler: bytecode.Compiler, entries: list[tuple[str, Path]], out_dir: Path
) -> list[tuple[str, Path]]:
    """(zip name, file) of the pycs for every module of `entries` that may be imported."""
    modules = [(name, path) for name, path in entries if name.endswith(".py") and _may_import(name)]
    try:
        return bytecode.compile_sources(compiler, modules, out_dir)
    except bytecode.CompileError as error:
        raise BuildError(str(error)) from None


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
    return BuiltPackage(zip_path, sha256, from_cache=True, bytecode=recorded.get("bytecode"))


def _install_dependencies(
    requirements: Path, target: Path, python_version: str, platform: str | None
) -> None:
    """pip-install `requirements` into `target` as wheels for `platform` and `python_version`
    (`platform` None: for the running interpreter, with pip's own tags).

    `--only-binary=:all:` is what lets pip install for another platform/Python than its own
    (https://pip.pypa.io/en/stable/cli/pip_install/#cmdoption-platform) and guarantees no sdist is
    compiled for the build machine. `--no-compile`: pip's bytecode would be for the build
    machine's Python (and checked by mtime); the target Python compiles it afterwards.
    """
    target_args = (
        ["--platform", platform, "--python-version", python_version, "--implementation", "cp"]
        if platform
        else []
    )
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
        *target_args,
        "--only-binary=:all:",
        "--requirement",
        str(requirements),
    ]
    try:
        result = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, check=False, timeout=PIP_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired:
        # subprocess.run has killed pip by now; nothing half-installed is kept (a temp folder).
        raise BuildError(
            f"pip did not finish within {PIP_TIMEOUT_SECONDS:g} s installing {requirements} "
            "(a package index or proxy that does not answer?)"
        ) from None
    if result.returncode != 0:
        raise BuildError(
            f"pip could not install {requirements} for {platform or _machine()} / Python "
            f"{python_version} "
            f"(exit {result.returncode}); a dependency without a matching wheel cannot ship:\n"
            f"{result.stderr.strip() or result.stdout.strip()}"
        )


def _may_import(name: str) -> bool:
    parts = name.split("/")
    if NOT_COMPILED_PACKAGES.intersection(parts[:-1]):
        return False
    top_level = len(SITE_PACKAGES.split("/"))
    dependency = name.startswith(f"{SITE_PACKAGES}/") and len(parts) > top_level
    return not (dependency and parts[top_level].removesuffix(".py") in NOT_COMPILED_TOP_LEVEL)


def _prune(site_packages: Path) -> None:
    """Remove what must not ship, so the result depends only on the wheels.

    - `bin/`: console scripts whose shebang names this machine's interpreter (the worker never
      runs them);
    - `__pycache__` / `*.pyc` that some wheels carry (compiled for whoever built the wheel);
    """
    shutil.rmtree(site_packages / "bin", ignore_errors=True)
    for cache in list(site_packages.rglob("__pycache__")):
        shutil.rmtree(cache)
    for suffix in _BYTECODE_SUFFIXES:
        for compiled in site_packages.rglob(f"*{suffix}"):
            compiled.unlink()


def _keep_botocore_services(site_packages: Path, services: tuple[str, ...] | None) -> None:
    """Delete the models of every AWS service but `services` from botocore's `data/`.

    botocore loads `data/<service>/<api-version>/` (service-2, endpoint-rule-set-1, paginators,
    waiters) when a client for that service is created, and the files at the top of `data/`
    (endpoints.json, partitions.json, _retry.json, sdk-default-configuration.json) for every
    client; those stay. A client for a service left out fails with UnknownServiceError, which
    tests/shipping/test_package_runs.py turns into a test failure.
    """
    data = site_packages / "botocore" / "data"
    if not data.is_dir():
        return
    if services is None:
        raise BuildError(
            f"botocore is a dependency but the app has no {AWS_SERVICES_FILE} naming the AWS "
            "services it calls; without it the package would carry all of them"
        )
    missing = [name for name in services if not (data / name).is_dir()]
    if missing:
        raise BuildError(f"botocore has no service called {', '.join(missing)} (AWS_SERVICES)")
    for entry in data.iterdir():
        if entry.is_dir() and entry.name not in services:
            shutil.rmtree(entry)


def _drop_record_lines_of_removed_files(site_packages: Path) -> None:
    """RECORD lists only files that ship: not those outside site-packages (`../../bin/...`, whose
    hashes cover machine-specific shebangs), nor those pruned or trimmed above."""
    for record in site_packages.glob("*.dist-info/RECORD"):
        lines = record.read_text().splitlines(keepends=True)
        kept = [line for line in lines if _ships(site_packages, line)]
        if kept != lines:
            record.write_text("".join(kept))


def _ships(site_packages: Path, record_line: str) -> bool:
    # RECORD is CSV (path,hash,size); a path holding a comma is quoted.
    path = next(csv.reader([record_line]), [""])[0]
    return not path.startswith("../") and bool(path) and (site_packages / path).is_file()


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
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--python",
        default=DEFAULT_PYTHON_VERSION,
        choices=PYTHON_VERSIONS,
        help="Python of the function apps (crosscloud:pythonVersion; default %(default)s)",
    )
    target.add_argument(
        "--local",
        action="store_true",
        help="for this machine's Python (what the local cloud runs) instead",
    )
    parser.add_argument(
        "--source", type=Path, default=DEFAULT_SOURCE_DIR, help="function app folder (%(default)s)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="build cache (%(default)s)"
    )
    args = parser.parse_args(argv)
    python_version, platform = local_target() if args.local else (args.python, PLATFORM)
    started = time.monotonic()
    try:
        package = build_package(args.source, python_version, args.cache_dir, platform)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    how = "reused from cache" if package.from_cache else "built"
    size = package.path.stat().st_size
    compiled = f"bytecode {package.bytecode}" if package.bytecode else "no bytecode"
    print(
        f"{how}: {size / 1e6:.1f} MB ({size} bytes) for Python {python_version} / "
        f"{platform or _machine()}, {compiled}, in {time.monotonic() - started:.1f}s",
        file=sys.stderr,
        flush=True,
    )
    print(f"{package.path} {package.sha256}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
