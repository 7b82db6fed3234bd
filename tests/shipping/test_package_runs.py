"""The package runs on its own: only the standard library and what it carries, as in Azure.

A probe starts the way every local function host does (`HOST_INTERPRETER`, cwd the unpacked
package, `load_functions` of localcloud/function_host.py), with PYTHONPATH pointing at this
repository and at the development virtualenv, which the isolated interpreter must ignore. It
then creates a client for every AWS service the code names and the Azure clients, and reports
what it imported and from where. The end-to-end tier runs the demo on the same package
(tests/e2e/test_runs_the_package.py).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from localcloud.cloud import HOST_INTERPRETER, HOST_SCRIPT, REPO
from shipping.build import AWS_SERVICES_FILE, SITE_PACKAGES, aws_services

FUNCTION_SRC = REPO / "function_src"

# Distributions in the package that the probe does not import, each required by one that it
# does and imported by it on a path the probe does not take. Anything else unimported (boto3,
# s3transfer before this list existed) is dead weight and fails the test.
LAZY_DEPENDENCIES = {
    # azure-identity requires it; imported only for a persistent token cache
    # (TokenCachePersistenceOptions), which the managed identity credential never uses.
    "msal-extensions",
    # cffi requires it to parse C declarations (cffi.FFI.cdef); cryptography's compiled
    # bindings only load _cffi_backend.
    "pycparser",
}

_PROBE = r"""
import importlib.metadata, importlib.util, json, sys

host_script, app_root = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("function_host", host_script)
host = importlib.util.module_from_spec(spec)
spec.loader.exec_module(host)
routes = sorted(host.load_functions(app_root))

from azure.identity import ManagedIdentityCredential
from azure.storage.blob import ContainerClient
import botocore.session
from crosscloud_fn import credentials
from crosscloud_fn.aws_services import AWS_SERVICES

session = credentials.isolated_botocore_session()
clients = {}
for name in AWS_SERVICES:
    client = session.create_client(name, region_name="eu-west-1")
    clients[name] = client.meta.service_model.service_name
ContainerClient(
    "https://account.blob.core.windows.net", "container",
    credential=ManagedIdentityCredential(client_id="00000000-0000-0000-0000-000000000000"),
)

blocked = {}
for name in ("moto", "pytest", "pulumi", "boto3", "localcloud", "shipping"):
    try:
        __import__(name)
        blocked[name] = "imported"
    except ModuleNotFoundError:
        blocked[name] = "missing"

tops = {name.partition(".")[0] for name in sys.modules}
owners = importlib.metadata.packages_distributions()
print(json.dumps({
    "routes": routes,
    "sys_path": sys.path,
    "flags": [sys.flags.isolated, sys.flags.no_site, sys.flags.dont_write_bytecode],
    "available": botocore.session.Session().get_available_services(),
    "clients": clients,
    "blocked": blocked,
    "files": {
        name: getattr(sys.modules[name], "__file__", None)
        for name in ("function_app", "crosscloud_fn", "azure.functions", "azure.identity",
                     "azure.storage.blob", "botocore", "cryptography", "requests")
    },
    "imported": sorted({d for top in tops for d in owners.get(top, [])}),
    "installed": sorted(
        d.metadata["Name"] for d in importlib.metadata.distributions(path=[sys.argv[3]])
    ),
}))
"""


@pytest.fixture(scope="module")
def probe(app_root: Path) -> dict[str, Any]:
    site_packages = app_root / SITE_PACKAGES
    dev_site_packages = sysconfig.get_paths()["purelib"]
    result = subprocess.run(
        [*HOST_INTERPRETER, "-c", _PROBE, str(HOST_SCRIPT), str(app_root), str(site_packages)],
        cwd=app_root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{REPO}:{dev_site_packages}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_the_host_serves_the_apps_functions(probe: dict[str, Any]) -> None:
    assert {"read", "list", "whoami"} <= set(probe["routes"])
    assert probe["flags"] == [1, 1, 1]


def test_development_packages_cannot_be_imported_in_a_function_host(
    probe: dict[str, Any],
) -> None:
    # All installed in the development virtualenv, and its site-packages is on PYTHONPATH.
    assert probe["blocked"] == {
        "moto": "missing",
        "pytest": "missing",
        "pulumi": "missing",
        "boto3": "missing",
        "localcloud": "missing",
        "shipping": "missing",
    }


def test_the_app_and_its_dependencies_come_from_the_package(
    probe: dict[str, Any], app_root: Path
) -> None:
    site_packages = app_root / SITE_PACKAGES
    files = {name: Path(path) for name, path in probe["files"].items()}
    assert files["function_app"] == app_root / "function_app.py"
    assert files["crosscloud_fn"].is_relative_to(app_root / "crosscloud_fn")
    for name in ("azure.functions", "azure.identity", "azure.storage.blob", "botocore"):
        assert files[name].is_relative_to(site_packages), name
    for name in ("cryptography", "requests"):
        assert files[name].is_relative_to(site_packages), name
    # The worker's order: the package's site-packages, the app root, then the standard library.
    path = probe["sys_path"]
    assert path[:2] == [str(site_packages), str(app_root)]
    stdlib = Path(sysconfig.get_paths()["stdlib"]).parent
    for entry in path[2:]:
        assert Path(entry).is_relative_to(stdlib) and "site-packages" not in entry, entry


def test_every_distribution_in_the_package_is_imported(probe: dict[str, Any]) -> None:
    unused = set(probe["installed"]) - set(probe["imported"])
    assert unused == LAZY_DEPENDENCIES, f"shipped but never imported: {sorted(unused)}"
    assert not {"boto3", "s3transfer"} & set(probe["installed"])


def test_the_package_holds_exactly_the_aws_services_the_code_names(
    probe: dict[str, Any],
) -> None:
    services = aws_services(FUNCTION_SRC)
    assert services is not None
    assert sorted(probe["available"]) == sorted(services)
    assert probe["clients"] == {name: name for name in services}


def _client_services(tree: ast.Module, constants: dict[str, str]) -> list[str | None]:
    """The service argument of every `.client(...)` / `.create_client(...)` call, resolved
    through the aws_services constants, imported by name or used as `aws_services.NAME` (None:
    something this scan cannot resolve)."""
    found: list[str | None] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("client", "create_client")
        ):
            argument = node.args[0] if node.args else None
            if argument is None:
                keyword = next((k for k in node.keywords if k.arg == "service_name"), None)
                argument = keyword.value if keyword else None
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                found.append(argument.value)
            elif isinstance(argument, ast.Name):
                found.append(constants.get(argument.id))
            elif (
                isinstance(argument, ast.Attribute)
                and isinstance(argument.value, ast.Name)
                and argument.value.id == "aws_services"
            ):
                found.append(constants.get(argument.attr))
            else:
                found.append(None)
    return found


def test_every_client_the_code_creates_is_for_a_service_the_package_keeps() -> None:
    services = aws_services(FUNCTION_SRC)
    assert services is not None
    module = ast.parse((FUNCTION_SRC / AWS_SERVICES_FILE).read_text())
    constants = {
        node.targets[0].id: node.value.value
        for node in module.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    created: list[str | None] = []
    for path in sorted(FUNCTION_SRC.rglob("*.py")):
        created += _client_services(ast.parse(path.read_text(), filename=str(path)), constants)
    assert created, "the scan found no client creation at all"
    assert set(created) <= set(services), f"clients for services not shipped: {created}"


def test_the_scan_sees_a_client_for_a_service_not_kept() -> None:
    tree = ast.parse('session.create_client("ec2")\nboto3.client(S3)\nsession.client(name)\n')
    assert _client_services(tree, {"S3": "s3"}) == ["ec2", "s3", None]
