"""The AWS readers Lambda's package: built as the function's is, with shipping/build.py's parts.

Same rules (shipping/build.py): byte-identical for identical input (sorted entries, fixed
timestamps, explicit modes), only what runs (pinned wheels for manylinux2014_x86_64 and the
Lambda's Python, botocore's `data/` cut down to the services named in
`crosscloud_lambda/aws_services.py`), cached under `.build/` by a key over everything that decides
its bytes.

Lambda's layout differs from Flex's: the handler module, its library and the dependencies all sit
at the zip's root, which Lambda puts on `sys.path` (/var/task); no host.json, no
requirements.txt (nothing installs at deploy time).

Shared code with the function: the Lambda imports `crosscloud_fn` modules (name validation, size
limits, the answer shape, errors, redaction). Rather than a copy that drifts, the builder copies
in from function_src exactly the `crosscloud_fn` modules the Lambda's imports reach (transitively,
read from the syntax trees), so a fix to the function's validation ships in both, and a module the
Lambda never reaches does not ship.

`python -m shipping.lambda_build [--python 3.12 | --local]` builds it; last line `<path> <sha256>`.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.metadata
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from shipping import build
from shipping.build import PLATFORM, BuildError, BuiltPackage

REPO_ROOT = build.REPO_ROOT
LAMBDA_SOURCE_DIR = REPO_ROOT / "lambda_src"
FUNCTION_SOURCE_DIR = build.DEFAULT_SOURCE_DIR
SHARED_PACKAGE = "crosscloud_fn"
"""The function's library, whose modules the Lambda may import."""
HANDLER = "lambda_function.handler"
"""The Lambda's `handler` setting: module `lambda_function`, function `handler`."""
LAMBDA_RUNTIME = "python3.12"
LAMBDA_PYTHON = "3.12"
AWS_SERVICES_FILE = "crosscloud_lambda/aws_services.py"
REQUIREMENTS = "requirements.txt"
_NOT_SHIPPED = frozenset({REQUIREMENTS})


def lambda_sources(source_dir: Path) -> list[tuple[str, Path]]:
    """The Lambda's own files that ship (build.source_files' rules, minus requirements.txt)."""
    return [
        (name, path) for name, path in build.source_files(source_dir) if name not in _NOT_SHIPPED
    ]


def shared_modules(
    sources: list[tuple[str, Path]], function_dir: Path = FUNCTION_SOURCE_DIR
) -> list[tuple[str, Path]]:
    """(zip name, file) of every `crosscloud_fn` module the Lambda's code reaches, transitively,
    plus the package's `__init__.py`; sorted. A reached module missing from function_src fails
    the build."""
    package_dir = function_dir / SHARED_PACKAGE
    pending = [path for name, path in sources if name.endswith(".py")]
    reached: set[str] = set()
    while pending:
        path = pending.pop()
        for module in _shared_imports(path, package_dir):
            if not (package_dir / f"{module}.py").is_file():
                # The Lambda would fail at import in AWS; fail the build instead.
                raise BuildError(
                    f"the Lambda imports {SHARED_PACKAGE}.{module}, not in {package_dir}"
                )
            if module not in reached:
                reached.add(module)
                pending.append(package_dir / f"{module}.py")
    if not reached:
        return []
    names = sorted(reached | {"__init__"})
    return [(f"{SHARED_PACKAGE}/{m}.py", package_dir / f"{m}.py") for m in names]


def _shared_imports(path: Path, package_dir: Path) -> set[str]:
    """Module names (within crosscloud_fn) that `path` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                head, _, rest = alias.name.partition(".")
                if head == SHARED_PACKAGE and rest:
                    found.add(rest.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module:
            head, _, rest = node.module.partition(".")
            if head != SHARED_PACKAGE or node.level:
                continue
            if rest:
                found.add(rest.split(".")[0])
            else:  # from crosscloud_fn import errors, redaction
                found.update(a.name for a in node.names if (package_dir / f"{a.name}.py").is_file())
    return found


def lambda_aws_services(source_dir: Path) -> tuple[str, ...]:
    """`AWS_SERVICES` of crosscloud_lambda/aws_services.py, read from its syntax tree."""
    path = source_dir / AWS_SERVICES_FILE
    if not path.is_file():
        raise BuildError(f"{path} is missing: the Lambda must name the AWS services it calls")
    constants: dict[str, object] = {}
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                constants[target.id] = build._literal(node.value, constants)
    services = constants.get("AWS_SERVICES")
    if (
        not isinstance(services, tuple)
        or not services
        or not all(isinstance(s, str) for s in services)
    ):
        raise BuildError(f"{path}: AWS_SERVICES must be a non-empty tuple of service names")
    return services


def cache_key(
    entries: list[tuple[str, Path]], requirements: Path, python_version: str, platform: str | None
) -> str:
    """Hex digest over the shipped sources, the requirements, target, pip and both builders."""
    digest = hashlib.sha256()

    def add(label: str, value: bytes) -> None:
        digest.update(f"{label}:{len(value)}:".encode())
        digest.update(value)

    add("builder", Path(build.__file__).read_bytes())
    add("lambda-builder", Path(__file__).read_bytes())
    add("pip", importlib.metadata.version("pip").encode())
    add("python", python_version.encode())
    add("platform", (platform or f"native:{sys.implementation.cache_tag}").encode())
    add("requirements", requirements.read_bytes())
    for name, path in entries:
        add("name", name.encode())
        add("content", path.read_bytes())
    return digest.hexdigest()


def build_lambda_package(
    python_version: str = LAMBDA_PYTHON,
    cache_dir: Path = build.DEFAULT_CACHE_DIR,
    platform: str | None = PLATFORM,
    source_dir: Path = LAMBDA_SOURCE_DIR,
    function_dir: Path = FUNCTION_SOURCE_DIR,
) -> BuiltPackage:
    """The Lambda's zip: from the cache, or built into it."""
    source_dir = source_dir.resolve()
    requirements = source_dir / REQUIREMENTS
    if not (source_dir / f"{HANDLER.split('.')[0]}.py").is_file() or not requirements.is_file():
        raise BuildError(
            f"{source_dir} is not the Lambda: needs lambda_function.py, {REQUIREMENTS}"
        )
    if platform is None and python_version != f"{sys.version_info.major}.{sys.version_info.minor}":
        raise BuildError("a package with this machine's wheels is for the running Python only")
    own = lambda_sources(source_dir)
    entries = own + shared_modules(own, function_dir)
    services = lambda_aws_services(source_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{source_dir.name}-py{python_version}" + ("" if platform else "-native")
    zip_path, key_path = cache_dir / f"{stem}.zip", cache_dir / f"{stem}.key.json"
    key = cache_key(entries, requirements, python_version, platform)
    cached = build._cached(zip_path, key_path, key)
    if cached:
        return cached
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".tmp-") as work:
        site_packages = Path(work, "site-packages")
        build._install_dependencies(requirements, site_packages, python_version, platform)
        build._prune(site_packages)
        build._keep_botocore_services(site_packages, services)
        build._drop_record_lines_of_removed_files(site_packages)
        staged = Path(work, "package.zip")
        build.write_zip(entries + build._all_files(site_packages), staged)
        sha256 = build.file_sha256(staged)
        key_path.unlink(missing_ok=True)
        os.replace(staged, zip_path)
    tmp_key = key_path.with_suffix(".tmp")
    tmp_key.write_text(json.dumps({"key": key, "sha256": sha256}, indent=2) + "\n")
    os.replace(tmp_key, key_path)
    return BuiltPackage(zip_path, sha256)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shipping.lambda_build",
        description="Build (or reuse) the AWS readers Lambda package; last line: <path> <sha256>.",
    )
    parser.add_argument("--local", action="store_true", help="for this machine's Python instead")
    parser.add_argument("--cache-dir", type=Path, default=build.DEFAULT_CACHE_DIR)
    args = parser.parse_args(argv)
    python_version, platform = build.local_target() if args.local else (LAMBDA_PYTHON, PLATFORM)
    started = time.monotonic()
    try:
        package = build_lambda_package(python_version, args.cache_dir, platform)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    size = package.path.stat().st_size
    how = "reused from cache" if package.from_cache else "built"
    print(
        f"{how}: {size / 1e6:.1f} MB ({size} bytes) for Python {python_version} "
        f"in {time.monotonic() - started:.1f}s",
        file=sys.stderr,
    )
    print(f"{package.path} {package.sha256}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
