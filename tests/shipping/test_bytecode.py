"""Bytecode in the package: compiled by the target Python, hash-based and unchecked, and used.

Flex mounts the package read-only, so the pycs the package carries are the only ones a cold
instance can use. These tests prove three things: the pycs are the target interpreter's (its own
magic number, checked by that interpreter), they are used (importing the app from a read-only
copy with `-I -S -B` opens no source and compiles nothing, seen by an audit hook), and the
builder behaves when the target Python is missing (one warning, a package without bytecode).

The fixture builds use the running Python, which is always there to compile; the real package
is checked for the running Python (what the local cloud runs) and for the deployed default
(`python3.12`, which CI sets up; skipped where no such interpreter exists).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localcloud.cloud import HOST_SCRIPT, REPO, unpack
from shipping import build, bytecode
from shipping.build import SITE_PACKAGES, BuiltPackage, build_package
from tests.shipping.test_build import local_requirements, write_app

RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"
STALE = b"\x00stale bytecode"  # what the cc-fixture-pure wheel carries in its __pycache__
_PIP_INSTALL = build._install_dependencies


@pytest.fixture(autouse=True)
def fresh_lookup() -> None:
    """Each test finds the interpreter (and warns) anew."""
    bytecode._find.cache_clear()
    bytecode._warn_once.cache_clear()


@pytest.fixture
def app(tmp_path: Path, wheelhouse: Path) -> Path:
    """A pure-Python app (it builds for any Python) with a set constant (marshalled in a fixed
    order whatever the hash seed), a module only another Python compiles, an asyncio package."""
    source = write_app(
        tmp_path / "app", local_requirements(wheelhouse, "cc-fixture-pure", "botocore")
    )
    (source / "crosscloud_fn" / "choices.py").write_text(
        'def known(word):\n    return word in {"alpha", "beta", "gamma", "delta", "epsilon"}\n'
    )
    (source / "crosscloud_fn" / "legacy.py").write_text("print 'only Python 2 compiles this'\n")
    (source / "crosscloud_fn" / "aio").mkdir()
    (source / "crosscloud_fn" / "aio" / "__init__.py").write_text("ASYNC = True\n")
    return source


def pyc_name(source: str, tag: str) -> str:
    folder, _, file = source.rpartition("/")
    return f"{folder}/__pycache__/{file.removesuffix('.py')}.{tag}.pyc".lstrip("/")


def test_the_running_python_compiles_the_package_for_itself(app: Path, tmp_path: Path) -> None:
    package = build_package(app, RUNNING, tmp_path / "cache")
    tag = sys.implementation.cache_tag
    assert package.bytecode == tag
    with zipfile.ZipFile(package.path) as archive:
        names = set(archive.namelist())
        stale_replaced = archive.read(pyc_name(f"{SITE_PACKAGES}/cc_fixture_pure/__init__.py", tag))
    for source in (
        "function_app.py",
        "crosscloud_fn/core.py",
        "crosscloud_fn/choices.py",
        f"{SITE_PACKAGES}/cc_fixture_pure/__init__.py",
    ):
        assert pyc_name(source, tag) in names, source
    assert stale_replaced != STALE
    # The wheel's own pyc was for CPython 3.12; a package for another Python must not carry it.
    assert all(tag in n for n in names if n.endswith(".pyc"))
    # Sources the target cannot compile, and asyncio packages, ship as source only.
    for source in ("crosscloud_fn/legacy.py", "crosscloud_fn/aio/__init__.py"):
        assert source in names and pyc_name(source, tag) not in names, source


def test_two_builds_with_bytecode_give_identical_bytes(app: Path, tmp_path: Path) -> None:
    first = build_package(app, RUNNING, tmp_path / "one")
    second = build_package(app, RUNNING, tmp_path / "two")
    assert first.bytecode and not second.from_cache
    assert first.path.read_bytes() == second.path.read_bytes()


_PRINT_ANSWER = (
    "import sys; sys.path[:0] = sys.argv[1:]; import crosscloud_fn.core as c; print(c.ANSWER)"
)


def test_a_changed_source_ships_with_a_new_pyc_that_runs_it(app: Path, tmp_path: Path) -> None:
    """Unchecked pycs are never compared with their source at import, so a redeploy must never
    pair a new source with an old pyc: the changed source changes the cache key, the whole
    package is rebuilt, and its pyc is the new source's."""
    tag = sys.implementation.cache_tag
    name = pyc_name("crosscloud_fn/core.py", tag)
    before = build_package(app, RUNNING, tmp_path / "cache")
    (app / "crosscloud_fn" / "core.py").write_text("ANSWER = 43\n")
    after = build_package(app, RUNNING, tmp_path / "cache")
    assert not after.from_cache and after.sha256 != before.sha256
    with zipfile.ZipFile(after.path) as archive:
        assert archive.read(name)[8:16] == importlib.util.source_hash(b"ANSWER = 43\n")
    root = unpack(after.path, tmp_path / "wwwroot")
    # What "unchecked" means: a source edited inside the unpacked package is not looked at.
    (root / "crosscloud_fn" / "core.py").write_text("ANSWER = 0  # not what shipped\n")
    answer = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", _PRINT_ANSWER, str(root)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert answer.stdout.strip() == "43"  # the shipped pyc ran, unchecked against the source


# Run by the target interpreter: for every pyc in the zip, its header against what this very
# interpreter would write for the source beside it (PEP 552: magic, flags, source hash).
_CHECK_HEADERS = r"""
import importlib.util, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive:
    names = set(archive.namelist())
    checked, wrong = 0, []
    for name in sorted(names):
        if not name.endswith(".pyc"):
            continue
        folder, _, file = name.rpartition("__pycache__/")
        source = folder + file.split(".")[0] + ".py"
        data = archive.read(name)
        expected = (
            importlib.util.MAGIC_NUMBER
            + (0b01).to_bytes(4, "little")  # hash-based, check_source off: unchecked
            + importlib.util.source_hash(archive.read(source))
        )
        checked += 1
        if data[:16] != expected or sys.implementation.cache_tag not in file:
            wrong.append(name)
print(json.dumps({"checked": checked, "wrong": wrong[:20]}))
"""


@dataclass(frozen=True)
class Target:
    version: str
    interpreter: str
    package: BuiltPackage


@pytest.fixture(scope="module", params=["running", "deployed"])
def target(request: pytest.FixtureRequest, app_package: BuiltPackage) -> Target:
    """The real package and the interpreter it is for: the local cloud's (this Python), and the
    deployed default built for Linux x86_64 with that Python's wheels."""
    if request.param == "running":
        return Target(RUNNING, sys.executable, app_package)
    version = build.DEFAULT_PYTHON_VERSION
    compiler = bytecode.find_compiler(version)
    if compiler is None:
        pytest.skip(f"no Python {version} here (CI sets one up); see shipping/bytecode.py")
    return Target(version, compiler.executable, build_package(REPO / "function_src", version))


def test_the_real_package_carries_the_target_pythons_unchecked_pycs(target: Target) -> None:
    assert target.package.bytecode == f"cpython-{target.version.replace('.', '')}"
    result = subprocess.run(
        [target.interpreter, "-I", "-S", "-c", _CHECK_HEADERS, str(target.package.path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    checked = json.loads(result.stdout)
    assert checked["wrong"] == []
    assert checked["checked"] > 500  # the app and every dependency it imports


# The host's way in (localcloud/function_host.py load_functions: package folders on sys.path,
# `function_app` imported, functions indexed), then every client the code creates. An audit
# hook records every source file of the package opened and every compile() of one.
_IMPORT_PROBE = r"""
import importlib.util, json, sys
host_script, root = sys.argv[1], sys.argv[2]
opened, compiled = [], []

def audit(event, args):
    if event == "open" and isinstance(args[0], str) and args[0].startswith(root):
        if args[0].endswith(".py"):
            opened.append(args[0])
    elif event == "compile" and isinstance(args[1], str) and args[1].startswith(root):
        compiled.append(args[1])

sys.addaudithook(audit)
spec = importlib.util.spec_from_file_location("function_host", host_script)
host = importlib.util.module_from_spec(spec)
spec.loader.exec_module(host)
routes = sorted(host.load_functions(root))

from azure.identity import ManagedIdentityCredential
from azure.storage.blob import ContainerClient
from crosscloud_fn import credentials
from crosscloud_fn.aws_services import AWS_SERVICES

session = credentials.isolated_botocore_session()
for name in AWS_SERVICES:
    session.create_client(name, region_name="eu-west-1")
ContainerClient(
    "https://account.blob.core.windows.net", "container",
    credential=ManagedIdentityCredential(client_id="00000000-0000-0000-0000-000000000000"),
)
modules = {
    name: [module.__file__, getattr(module, "__cached__", None)]
    for name, module in list(sys.modules.items())
    if str(getattr(module, "__file__", None) or "").startswith(root)
    and module.__file__.endswith(".py")  # not the compiled extension modules
}
print(json.dumps({"routes": routes, "opened": opened, "compiled": compiled, "modules": modules}))
"""


@pytest.fixture(scope="module")
def read_only_import(target: Target, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = unpack(target.package.path, tmp_path_factory.mktemp(f"wwwroot-{target.version}"))
    files_before = sorted(root.rglob("*"))
    for path in files_before:
        path.chmod(0o555 if path.is_dir() else 0o444)
    root.chmod(0o555)
    try:
        result = subprocess.run(
            [
                target.interpreter,
                "-I",
                "-S",
                "-B",
                "-c",
                _IMPORT_PROBE,
                str(HOST_SCRIPT),
                str(root),
            ],
            cwd=root,
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        files_after = sorted(root.rglob("*"))
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert result.returncode == 0, result.stderr
    assert files_after == files_before  # nothing written (-B; root could write despite 0o444)
    return {"root": str(root), **json.loads(result.stdout.splitlines()[-1])}


def test_importing_from_the_read_only_package_reads_no_source_and_compiles_nothing(
    read_only_import: dict[str, Any],
) -> None:
    assert {"read", "list", "whoami"} <= set(read_only_import["routes"])
    modules = read_only_import["modules"]
    from_pyc = {name for name, (_, cached) in modules.items() if cached and Path(cached).is_file()}
    assert len(modules) > 300  # the app, azure-*, botocore, cryptography, msal, urllib3...
    # Every module the app and its clients import has its pyc: nothing on these paths is among
    # the builder's NOT_COMPILED_* exceptions.
    assert sorted(set(modules) - from_pyc) == []
    assert read_only_import["opened"] == []
    assert read_only_import["compiled"] == []


def test_the_audit_hook_sees_sources_read_when_there_is_no_bytecode(
    target: Target, tmp_path: Path
) -> None:
    """The probe above can fail: the same package without its pycs reads and compiles every
    module it imports."""
    root = unpack(target.package.path, tmp_path / "wwwroot")
    for cache in list(root.rglob("__pycache__")):
        shutil.rmtree(cache)
    result = subprocess.run(
        [target.interpreter, "-I", "-S", "-B", "-c", _IMPORT_PROBE, str(HOST_SCRIPT), str(root)],
        cwd=root,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = json.loads(result.stdout.splitlines()[-1])
    assert str(root / "function_app.py") in seen["opened"]
    assert str(root / "function_app.py") in seen["compiled"]
    # Every module file (some modules are in sys.modules under two names, e.g. `six.moves`),
    # and those whose import failed and was caught (urllib3.contrib.socks without PySocks...).
    files = {file for file, _ in seen["modules"].values()}
    assert set(seen["compiled"]) == set(seen["opened"]) >= files
    assert len(files) > 300


def fake_python(path: Path, script: str) -> Path:
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return path


def test_without_the_target_python_the_package_ships_without_bytecode_after_one_warning(
    app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = "3.12" if RUNNING != "3.12" else "3.11"
    variable = bytecode.environment_variable(other)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # What a pyenv shim for a version that is not activated does.
    fake_python(
        bin_dir / f"python{other}", f"echo 'pyenv: python{other}: command not found' >&2\nexit 127"
    )
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv(variable, str(tmp_path / "no-such-python"))
    monkeypatch.setattr(build, "_install_dependencies", _install_pure_wheels)
    first = build_package(app, other, tmp_path / "one")
    second = build_package(app, other, tmp_path / "two")
    assert first.bytecode is None and second.bytecode is None
    with zipfile.ZipFile(first.path) as archive:
        assert not [n for n in archive.namelist() if "__pycache__" in n or n.endswith(".pyc")]
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    [warning] = warnings  # one, for two builds
    assert f"Install Python {other} (`python{other}` on PATH) or name one in {variable}" in warning


def _install_pure_wheels(requirements: Path, target: Path, python_version: str, _: object) -> None:
    """pip for the running Python: the fixture wheels are pure, so any target gets the same."""
    _PIP_INSTALL(requirements, target, RUNNING, None)


def test_a_package_built_without_bytecode_is_rebuilt_once_an_interpreter_is_found(
    app: Path,
) -> None:
    compiler = bytecode.find_compiler(RUNNING)
    assert compiler is not None
    assert build.cache_key(app, RUNNING, compiler=None) != build.cache_key(
        app, RUNNING, compiler=compiler
    )


def test_the_interpreter_named_by_the_environment_comes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "used"
    named = fake_python(tmp_path / "python", f'echo used >> {log}\nexec {sys.executable} "$@"')
    monkeypatch.setenv(bytecode.environment_variable(RUNNING), str(named))
    compiler = bytecode.find_compiler(RUNNING)
    assert compiler is not None and compiler.version.startswith(f"{RUNNING}.")
    assert log.read_text() == "used\n"


def test_an_interpreter_of_another_version_is_not_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = "3.12" if RUNNING != "3.12" else "3.11"
    # Answers the probe, but is the running Python, not `other`.
    named = fake_python(tmp_path / "python", f'exec {sys.executable} "$@"')
    monkeypatch.setenv(bytecode.environment_variable(other), str(named))
    monkeypatch.setenv("PATH", os.devnull)
    assert bytecode.find_compiler(other) is None
