"""The AWS readers Lambda's package: deterministic, only what runs, and it runs on its own.

Built for this machine's Python (pip needs PyPI the first time; cached in .build/ by key), then
imported in an interpreter that sees only the standard library and the unpacked zip (`-I -S`,
as the local cloud's hosts), with PYTHONPATH pointing at this repository, which it must ignore.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from shipping import lambda_build
from shipping.build import BuildError, BuiltPackage, local_target

_PROBE = r"""
import json, sys
sys.path.insert(0, ".")
import lambda_function
answer = lambda_function.handler({"action": "list"}, None)
import botocore.session
session = botocore.session.Session()
sts = session.create_client("sts", region_name="eu-west-1").meta.service_model
print(json.dumps({
    "answer": answer,
    "get_web_identity_token": "GetWebIdentityToken" in sts.operation_names,
    "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("crosscloud_fn", "repo")),
    "files": sorted({m.__file__ for m in sys.modules.values() if getattr(m, "__file__", None)
                     and m.__name__.split(".")[0] in ("crosscloud_fn", "crosscloud_lambda")}),
}))
"""


@pytest.fixture(scope="module")
def package() -> BuiltPackage:
    python_version, platform = local_target()
    return lambda_build.build_lambda_package(python_version, platform=platform)


def _names(package: BuiltPackage) -> list[str]:
    with zipfile.ZipFile(package.path) as archive:
        return archive.namelist()


def test_rebuild_is_byte_identical_and_cached(package, tmp_path):
    python_version, platform = local_target()
    again = lambda_build.build_lambda_package(python_version, tmp_path, platform)
    assert again.sha256 == package.sha256
    assert not again.from_cache
    assert lambda_build.build_lambda_package(python_version, tmp_path, platform).from_cache


def test_only_what_runs_ships(package):
    names = _names(package)
    tops = {name.split("/")[0] for name in names}
    assert "lambda_function.py" in names
    assert "requirements.txt" not in names
    # The function's host/runtime pieces do not ship in the Lambda.
    assert not tops & {"azure_functions", "werkzeug", "markupsafe", "function_app.py", "boto3"}
    assert {
        n.split("/")[2] for n in names if n.startswith("botocore/data/") and n.count("/") > 2
    } == {"sts"}
    shared = {n for n in names if n.startswith("crosscloud_fn/") and n.endswith(".py")}
    own = lambda_build.lambda_sources(lambda_build.LAMBDA_SOURCE_DIR)
    expected = {name for name, _ in lambda_build.shared_modules(own)}
    assert shared == expected
    # Modules the Lambda never reaches stay behind (the function's HTTP service and telemetry).
    assert "crosscloud_fn/service.py" not in shared
    assert "crosscloud_fn/telemetry.py" not in shared


def test_handler_imports_from_the_package_alone(package, tmp_path):
    with zipfile.ZipFile(package.path) as archive:
        archive.extractall(tmp_path)
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", _PROBE],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{repo}:{repo / 'function_src'}:{repo / 'lambda_src'}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.splitlines()[-1])
    # No settings in this environment: a JSON refusal, not an import error.
    assert report["answer"]["error"]["code"] == "misconfigured"
    assert report["get_web_identity_token"]
    assert all(path.startswith(str(tmp_path)) for path in report["files"])


def test_shared_modules_follow_imports_transitively(tmp_path):
    package = tmp_path / "fn" / "crosscloud_fn"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from crosscloud_fn.b import x\n")
    (package / "b.py").write_text("x = 1\n")
    (package / "unused.py").write_text("y = 2\n")
    handler = tmp_path / "h.py"
    handler.write_text("from crosscloud_fn import a\n")
    shared = lambda_build.shared_modules([("h.py", handler)], tmp_path / "fn")
    assert [name for name, _ in shared] == [
        "crosscloud_fn/__init__.py",
        "crosscloud_fn/a.py",
        "crosscloud_fn/b.py",
    ]
    handler.write_text("import crosscloud_fn.missing\n")
    with pytest.raises(BuildError, match="missing"):
        lambda_build.shared_modules([("h.py", handler)], tmp_path / "fn")
