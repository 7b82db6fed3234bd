"""The deployment package: its size, how fast the app imports from it, and reads on a fresh host.

- package_mb: size of the zip `python -m shipping.build` makes for the running Python (what the
  local cloud runs; the deployed one differs only in the Python tag of its native wheels).
- function_import_ms: median over fresh interpreters (`python -I -S -B`, only the standard
  library, the package's site-packages and the app root on sys.path, as in the Python worker) of
  the time `import function_app` takes. `-B`: Flex runs the app from its package mounted
  read-only (https://learn.microsoft.com/azure/azure-functions/run-functions-from-deployment-package),
  so no bytecode is cached and every cold instance compiles what it imports.
- function_import_bytecode_ms: the same with bytecode cached, for comparison (what shipping
  bytecode compiled for the target Python would save).
- cold_first_read_ms: median over fresh hosts of the first /api/read (local cloud, no injected
  latency; the hosts run the package, see localcloud/function_host.py): Entra token, STS
  exchange, clients built (botocore loads the service models), Blob and S3 read.
- warm_read_ms: median /api/read on a host that has served one already.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from localcloud.cloud import LocalCloud, local_package
from localcloud.world import world_from_program
from shipping import build

IMPORT_SAMPLES = 7
COLD_SAMPLES = 5
WARM_SAMPLES = 30
APP = "uami"

_IMPORT_PROBE = """
import sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
started = time.perf_counter()
import function_app
print((time.perf_counter() - started) * 1000)
"""


def import_ms(package: Path, *, bytecode: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="crosscloud-bench-pkg-") as tmp:
        with zipfile.ZipFile(package) as archive:
            archive.extractall(tmp)
        site_packages = str(Path(tmp, build.SITE_PACKAGES))
        flags = ["-I", "-S"] if bytecode else ["-I", "-S", "-B"]
        samples = []
        # With bytecode, one run first fills __pycache__; the samples then all read it.
        for _ in range(IMPORT_SAMPLES + int(bytecode)):
            probe = subprocess.run(  # noqa: S603 - our interpreter, our probe
                [sys.executable, *flags, "-c", _IMPORT_PROBE, tmp, site_packages],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
                env={"PATH": "/usr/bin:/bin"},
            )
            samples.append(float(probe.stdout.strip().splitlines()[-1]))
    return statistics.median(samples[int(bytecode) :])


def read_ms(package: build.BuiltPackage) -> tuple[float, float]:
    with LocalCloud(world_from_program(), package=package) as cloud:
        params = {"name": cloud.world.shared_names()[0]}

        def read() -> float:
            reply = cloud.call(APP, "read", params)
            if reply.status != 200:
                raise RuntimeError(f"/api/read answered {reply.status}: {reply.body}")
            return reply.ms

        cold = []
        for sample in range(COLD_SAMPLES):
            if sample:
                cloud.restart_app(APP)
            cold.append(read())
        warm = [read() for _ in range(WARM_SAMPLES)]
    return statistics.median(cold), statistics.median(warm)


def run() -> dict[str, float]:
    package = local_package()
    cold, warm = read_ms(package)
    return {
        "package_mb": package.path.stat().st_size / 1e6,
        "function_import_ms": import_ms(package.path, bytecode=False),
        "function_import_bytecode_ms": import_ms(package.path, bytecode=True),
        "cold_first_read_ms": cold,
        "warm_read_ms": warm,
    }
