"""The cloud's function hosts run the deployment package, in an interpreter isolated from the
development virtualenv (localcloud/function_host.py); the demo's outcomes
(test_demo_outcomes.py) are therefore the package's."""

from __future__ import annotations

import zipfile
from pathlib import Path

from localcloud.cloud import HOST_INTERPRETER, HOST_SCRIPT, LocalCloud, local_package
from shipping.build import SITE_PACKAGES


def test_the_cloud_runs_the_package_pulumi_up_would_build(cloud: LocalCloud) -> None:
    assert cloud.package == local_package()  # same bytes: sha256 and path


def test_every_host_runs_isolated_from_the_unpacked_package(cloud: LocalCloud) -> None:
    with zipfile.ZipFile(cloud.package.path) as archive:
        shipped = {name.rstrip("/") for name in archive.namelist()}
    for name, host in cloud.hosts.items():
        proc = Path(f"/proc/{host.pid}")
        command = proc.joinpath("cmdline").read_bytes().decode().split("\0")[:-1]
        assert command == [*HOST_INTERPRETER, str(HOST_SCRIPT)], name
        root = proc.joinpath("cwd").resolve()
        assert root == host.app_root.resolve(), name
        # What the host unpacked is exactly the zip: nothing added, nothing missing.
        on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*")}
        assert on_disk == shipped, name
        # Compiled modules the running process has loaded (cryptography's Rust bindings, cffi's
        # backend...) come from the package, none from the development virtualenv.
        mapped = {
            line.split(maxsplit=5)[5]
            for line in proc.joinpath("maps").read_text().splitlines()
            if len(line.split(maxsplit=5)) == 6 and "site-packages" in line
        }
        assert mapped, f"{name}: no compiled dependency loaded"
        site_packages = root / SITE_PACKAGES
        assert all(Path(path).is_relative_to(site_packages) for path in mapped), (name, mapped)
