"""Function hosts of the local cloud, started from the deployment package `pulumi up` deploys.

`shipping/build.py` builds the package from function_src for the running Python (cached by
content hash); it is unpacked as Flex mounts it, and each app runs it in its own
`python -I -S localcloud/function_host.py` process that sees only the standard library and the
package, with the app's own environment and function keys.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from localcloud.app_plans import AppPlan
from localcloud.arm import SiteKeys
from localcloud.certs import TlsFiles
from shipping.build import BuiltPackage, build_package, local_target

REPO = Path(__file__).resolve().parents[1]
FUNCTION_SRC = REPO / "function_src"
HOST_SCRIPT = REPO / "localcloud" / "function_host.py"
HOST_INTERPRETER = (sys.executable, "-I", "-S", "-B")
"""How a host's Python starts. -I -S: no site-packages, PYTHON* variables or script folder on
sys.path, the host adds the package's own folders (see localcloud/function_host.py). -B: Flex
runs the app from its package mounted read-only, where no bytecode can be cached
(https://learn.microsoft.com/azure/azure-functions/run-functions-from-deployment-package), so
a cold start uses only the bytecode the package carries (shipping/bytecode.py), here too."""
HOST_READY_TIMEOUT = 60.0


def local_package() -> BuiltPackage:
    """The package `pulumi up` would deploy, built for this machine's Python (cached)."""
    python_version, platform = local_target()
    return build_package(FUNCTION_SRC, python_version, platform=platform)


def unpack(package: Path, destination: Path) -> Path:
    """Extract the package as Flex mounts it: the zip's entries, nothing else."""
    with zipfile.ZipFile(package) as archive:
        archive.extractall(destination)
    return destination


class FunctionHost:
    """One function host process (`python -I -S localcloud/function_host.py` in the unpacked
    package) and what it needs to (re)start."""

    def __init__(
        self, plan: AppPlan, env: Mapping[str, str], keys: SiteKeys, workdir: Path, app_root: Path
    ) -> None:
        self.plan = plan
        self.app_root = app_root
        self.env = dict(env)
        self.keys = keys
        self.port = 0
        self.log_path = workdir / f"{plan.name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def launch(self, tls: TlsFiles) -> None:
        """Start the process (it imports the app in parallel with whatever the caller does)."""
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [*HOST_INTERPRETER, str(HOST_SCRIPT)],
            cwd=self.app_root,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            # Its own session: Ctrl-C in the terminal reaches the cloud, which stops the hosts.
            start_new_session=True,
        )
        spec = {
            "name": self.name,
            "app_root": str(self.app_root),
            "port": self.port,  # 0 the first time; a restart keeps the port
            "server_cert": str(tls.server_cert),
            "server_key": str(tls.server_key),
            "keys": {"default": self.keys.default, "master": self.keys.master},
        }
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(spec).encode() + b"\n")
        self._process.stdin.flush()

    def wait_ready(self, timeout: float = HOST_READY_TIMEOUT) -> None:
        assert self._process is not None and self._process.stdout is not None
        readable, _, _ = select.select([self._process.stdout], [], [], timeout)
        line = self._process.stdout.readline().decode() if readable else ""
        if not line.startswith("listening "):
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"function host {self.name} did not start:\n{tail}")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.close()  # end of file: the host exits
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None
