"""The package builder: reproducible bytes, the layout Flex loads, cache reuse, wheel platforms.

Most builds install tiny local wheels (conftest `wheelhouse`, pip --no-index) so they run offline
in about a second; one test builds the real function_src with its real requirements from PyPI.
"""

from __future__ import annotations

import re
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from shipping import build
from shipping.build import SITE_PACKAGES, BuildError, BuiltPackage, build_package, file_sha256

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON = "3.12"
# Platform tags a Linux x86_64 worker can load; "any" for pure-Python wheels.
_LINUX_X86_64 = re.compile(r"^(?:any|linux_x86_64|manylinux\w*_x86_64)$")


def write_app(source: Path, requirements: str) -> Path:
    """A small function app with everything that must NOT ship next to what must."""
    files = {
        "function_app.py": "import azure.functions as func\napp = func.FunctionApp()\n",
        "host.json": '{"version": "2.0"}\n',
        "requirements.txt": requirements,
        "crosscloud_fn/__init__.py": "",
        "crosscloud_fn/core.py": "ANSWER = 42\n",
        "crosscloud_fn/aws_services.py": 'STS = "sts"\nAWS_SERVICES = (STS, "s3")\n',
        "crosscloud_fn/__pycache__/core.cpython-312.pyc": "bytecode",
        "crosscloud_fn/stale.pyc": "bytecode",
        "tests/test_app.py": "def test(): pass\n",
        "crosscloud_fn/tests/test_core.py": "def test(): pass\n",
        "local.settings.json": '{"Values": {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}}',
        ".venv/bin/python": "not shipped",
        ".vscode/settings.json": "{}",
    }
    for name, content in files.items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return source


def local_requirements(wheelhouse: Path, *names: str) -> str:
    return f"--no-index\n--find-links {wheelhouse}\n" + "".join(f"{n}==1.0\n" for n in names)


@pytest.fixture
def app(tmp_path: Path, wheelhouse: Path) -> Path:
    return write_app(
        tmp_path / "app",
        local_requirements(wheelhouse, "cc-fixture-pure", "cc-fixture-native", "botocore"),
    )


@pytest.fixture
def built(app: Path, tmp_path: Path) -> BuiltPackage:
    return build_package(app, PYTHON, tmp_path / "cache")


def names_in(package: BuiltPackage) -> list[str]:
    with zipfile.ZipFile(package.path) as archive:
        return archive.namelist()


def assert_flex_layout(package: BuiltPackage) -> list[str]:
    """What every package must satisfy, fixture or real; returns its entry names."""
    with zipfile.ZipFile(package.path) as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        assert archive.testzip() is None
        wheels = {
            name: archive.read(name).decode()
            for name in names
            if re.fullmatch(rf"{SITE_PACKAGES}/[^/]+\.dist-info/WHEEL", name)
        }
    assert {"function_app.py", "host.json", "requirements.txt"} <= set(names)
    assert names == sorted(names)
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0), info.filename
        assert info.create_system == 3, info.filename
        mode = info.external_attr >> 16
        if info.is_dir():
            assert mode == stat.S_IFDIR | 0o755, info.filename
        else:
            assert mode == stat.S_IFREG | 0o644, info.filename
    assert_only_target_bytecode(names, package.bytecode)
    app_names = [n for n in names if not n.startswith(".python_packages/")]
    assert not any("tests" in n.split("/") for n in app_names), app_names
    assert "local.settings.json" not in names
    assert not any(n.startswith((".venv/", ".vscode/", f"{SITE_PACKAGES}/bin/")) for n in names)
    dependency_files = [n for n in names if n.startswith(".python_") and not n.endswith("/")]
    assert all(n.startswith(f"{SITE_PACKAGES}/") for n in dependency_files)
    assert wheels, "no dependency was installed"
    for name, text in wheels.items():
        tags = [
            line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")
        ]
        assert tags, name
        for tag in tags:
            interpreter, abi, platform = tag.split("-")
            assert _LINUX_X86_64.match(platform), f"{name}: {tag}"
            assert abi in ("none", "abi3", "cp312"), f"{name}: {tag}"
            if abi == "cp312":
                assert interpreter == "cp312", f"{name}: {tag}"
    return names


def assert_only_target_bytecode(names: list[str], tag: str | None) -> None:
    """No bytecode but the target's pycs, each in `__pycache__` beside the source it was compiled
    from: none a wheel carried, none for another Python (tests/shipping/test_bytecode.py checks
    their contents and that they are used)."""
    compiled = [n for n in names if n.endswith((".pyc", ".pyo")) or "__pycache__/" in n]
    if tag is None:
        assert compiled == []
        return
    assert tag == f"cpython-{PYTHON.replace('.', '')}"
    shipped = set(names)
    for name in compiled:
        if name.endswith("/"):
            assert name.endswith("__pycache__/"), name
            continue
        folder, marker, file = name.rpartition("__pycache__/")
        assert marker and "/" not in file and file.endswith(f".{tag}.pyc"), name
        assert folder + file.removesuffix(f".{tag}.pyc") + ".py" in shipped, name


def test_two_builds_give_identical_bytes(app: Path, tmp_path: Path) -> None:
    first = build_package(app, PYTHON, tmp_path / "one")
    second = build_package(app, PYTHON, tmp_path / "two")
    assert not first.from_cache and not second.from_cache
    assert first.sha256 == second.sha256 == file_sha256(first.path)
    assert first.path.read_bytes() == second.path.read_bytes()


def test_package_has_the_layout_flex_loads(built: BuiltPackage) -> None:
    names = assert_flex_layout(built)
    assert "crosscloud_fn/core.py" in names
    assert "crosscloud_fn/" in names  # folders have entries too (0o755)
    assert f"{SITE_PACKAGES}/cc_fixture_pure/__init__.py" in names
    assert f"{SITE_PACKAGES}/cc_fixture_native/_speedups.cpython-312-x86_64-linux-gnu.so" in names


def test_record_files_only_list_what_ships(built: BuiltPackage) -> None:
    # The console script's RECORD line hashes a shebang naming this machine's interpreter.
    with zipfile.ZipFile(built.path) as archive:
        record = archive.read(f"{SITE_PACKAGES}/cc_fixture_pure-1.0.dist-info/RECORD").decode()
    assert "cc_fixture_pure/__init__.py," in record
    assert "../" not in record and "cc-fixture" not in record


def test_botocore_keeps_only_the_services_the_app_names(built: BuiltPackage) -> None:
    names = names_in(built)
    data = f"{SITE_PACKAGES}/botocore/data"
    services = {n.removeprefix(f"{data}/").split("/")[0] for n in names if n.startswith(f"{data}/")}
    services.discard("")  # the folder entry itself
    # The folders of AWS_SERVICES and the shared files at the top; not ec2 or iam.
    assert services == {"sts", "s3", "endpoints.json", "_retry.json"}
    assert f"{data}/s3/2006-03-01/endpoint-rule-set-1.json.gz" in names
    with zipfile.ZipFile(built.path) as archive:
        record = archive.read(f"{SITE_PACKAGES}/botocore-1.0.dist-info/RECORD").decode()
    assert "botocore/data/sts/" in record
    assert "botocore/data/ec2/" not in record and "botocore/data/iam/" not in record


def test_the_service_list_is_read_without_running_the_app(app: Path) -> None:
    (app / "crosscloud_fn" / "aws_services.py").write_text(
        'raise SystemExit("never run")\nSTS = "sts"\nS3 = "s3"\nAWS_SERVICES = (STS, S3)\n'
    )
    assert build.aws_services(app) == ("sts", "s3")


@pytest.mark.parametrize(
    "module",
    [
        'AWS_SERVICES = ("sts", "no-such-service")\n',
        "AWS_SERVICES = ()\n",
        "AWS_SERVICES = ['sts']\n",
        "AWS_SERVICES = (UNDEFINED,)\n",
        "SERVICES = ('sts',)\n",
    ],
)
def test_a_bad_service_list_is_refused(app: Path, tmp_path: Path, module: str) -> None:
    (app / "crosscloud_fn" / "aws_services.py").write_text(module)
    with pytest.raises(BuildError, match="AWS_SERVICES"):
        build_package(app, PYTHON, tmp_path / "cache")


def test_botocore_without_a_service_list_is_refused(app: Path, tmp_path: Path) -> None:
    (app / "crosscloud_fn" / "aws_services.py").unlink()
    with pytest.raises(BuildError, match=r"aws_services\.py"):
        build_package(app, PYTHON, tmp_path / "cache")


def test_unchanged_sources_reuse_the_cached_package(
    app: Path, built: BuiltPackage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pip(*_args: object) -> None:
        raise AssertionError("pip ran although nothing changed")

    monkeypatch.setattr(build, "_install_dependencies", no_pip)
    again = build_package(app, PYTHON, tmp_path / "cache")
    assert again.from_cache
    assert (again.path, again.sha256) == (built.path, built.sha256)


def test_changing_a_source_file_changes_the_package(
    app: Path, built: BuiltPackage, tmp_path: Path
) -> None:
    (app / "crosscloud_fn" / "core.py").write_text("ANSWER = 43\n")
    changed = build_package(app, PYTHON, tmp_path / "cache")
    assert not changed.from_cache
    assert changed.sha256 != built.sha256


def test_files_that_never_ship_do_not_change_the_package(
    app: Path, built: BuiltPackage, tmp_path: Path
) -> None:
    (app / "tests" / "test_app.py").write_text("def test(): assert False\n")
    (app / "local.settings.json").write_text("{}")
    assert build_package(app, PYTHON, tmp_path / "cache").from_cache


def test_cache_key_covers_python_version_platform_and_requirements(app: Path) -> None:
    key = build.cache_key(app, PYTHON)
    assert build.cache_key(app, "3.11") != key
    assert build.cache_key(app, PYTHON, platform=None) != key
    (app / "requirements.txt").write_text((app / "requirements.txt").read_text() + "# pinned\n")
    assert build.cache_key(app, PYTHON) != key


def test_a_tampered_cached_package_is_rebuilt(
    app: Path, built: BuiltPackage, tmp_path: Path
) -> None:
    built.path.write_bytes(b"not the package")
    rebuilt = build_package(app, PYTHON, tmp_path / "cache")
    assert not rebuilt.from_cache
    assert rebuilt.sha256 == built.sha256


def test_a_dependency_without_a_wheel_for_the_target_python_fails(
    app: Path, tmp_path: Path
) -> None:
    # cc-fixture-native exists for CPython 3.12 only.
    with pytest.raises(BuildError, match="cc-fixture-native"):
        build_package(app, "3.11", tmp_path / "cache")


def test_a_windows_only_dependency_is_refused(tmp_path: Path, wheelhouse: Path) -> None:
    app = write_app(tmp_path / "app", local_requirements(wheelhouse, "cc-fixture-windows"))
    with pytest.raises(BuildError, match="manylinux2014_x86_64"):
        build_package(app, PYTHON, tmp_path / "cache")


def test_a_folder_without_host_json_is_not_a_function_app(app: Path, tmp_path: Path) -> None:
    (app / "host.json").unlink()
    with pytest.raises(BuildError, match=r"missing host\.json"):
        build_package(app, PYTHON, tmp_path / "cache")


def test_make_package_prints_path_and_sha256_last(app: Path, built: BuiltPackage) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "shipping.build", "--python", PYTHON),
            *("--source", str(app), "--cache-dir", str(built.path.parent)),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines()[-1] == f"{built.path} {built.sha256}"


def test_the_local_target_is_the_running_python_and_on_linux_x86_64_the_deployed_wheels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    monkeypatch.setattr(build.sys, "platform", "linux")
    monkeypatch.setattr(build.host_platform, "machine", lambda: "x86_64")
    assert build.local_target() == (running, build.PLATFORM)
    monkeypatch.setattr(build.host_platform, "machine", lambda: "aarch64")
    assert build.local_target() == (running, None)


def test_this_machines_wheels_only_for_the_running_python(app: Path, tmp_path: Path) -> None:
    other = "3.12" if sys.version_info[:2] != (3, 12) else "3.11"
    with pytest.raises(BuildError, match="running Python"):
        build_package(app, other, tmp_path / "cache", platform=None)


@pytest.fixture(scope="session")
def real_package() -> BuiltPackage:
    """function_src with its real requirements for the deployed Python (pip needs PyPI), built
    once (cached in .build/ by content hash, like `make package`)."""
    return build_package(REPO_ROOT / "function_src", PYTHON)


def test_real_function_app_package(real_package: BuiltPackage) -> None:
    names = assert_flex_layout(real_package)
    for module in ("azure/functions", "azure/identity", "azure/storage/blob", "botocore"):
        assert any(n.startswith(f"{SITE_PACKAGES}/{module}/") for n in names), module
    # Never imported by the code (it uses botocore alone): not shipped.
    for dist in ("boto3", "s3transfer"):
        assert not any(n.startswith(f"{SITE_PACKAGES}/{dist}") for n in names), dist
    # The one compiled dependency chain (cryptography via azure-identity/msal) is for Linux.
    assert any(n.startswith(f"{SITE_PACKAGES}/cryptography/") and n.endswith(".so") for n in names)


def test_a_pip_that_hangs_is_stopped_and_named(
    app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip waits on the network (an index that accepts and never answers, a proxy): the build
    must end with a BuildError, not hold `pulumi preview` for ever."""
    hanging = tmp_path / "hanging-python"
    hanging.write_text("#!/bin/sh\nexec sleep 30\n")
    hanging.chmod(0o755)
    monkeypatch.setattr(build.sys, "executable", str(hanging))
    monkeypatch.setattr(build, "PIP_TIMEOUT_SECONDS", 0.5, raising=False)
    with pytest.raises(BuildError, match=r"pip did not finish within 0\.5 s"):
        build_package(app, PYTHON, tmp_path / "cache")


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_symlink_in_the_app_is_refused_not_followed(app: Path, tmp_path: Path, kind: str) -> None:
    """A link committed into function_src (`notes.txt -> ~/.azure/...`) would ship whatever it
    points at on the machine that runs `pulumi up`: the deployer's token cache, for instance."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "msal_token_cache.json").write_text('{"AccessToken": "secret"}')
    if kind == "file":
        (app / "notes.txt").symlink_to(outside / "msal_token_cache.json")
    else:
        (app / "crosscloud_fn" / "linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(BuildError, match="symbolic link"):
        build_package(app, PYTHON, tmp_path / "cache")
