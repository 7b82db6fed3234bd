"""The deployment package: its size, how fast the app imports from it, and reads on a fresh host.

- package_mb: size of the zip `python -m shipping.build` makes for the running Python (what the
  local cloud runs; the deployed one differs only in the Python tag of its native wheels).
- function_import_ms: median over fresh interpreters (`python -I -S`, only the standard library,
  the package's site-packages and the app root on sys.path, as in the Python worker) of the
  time `import function_app` takes.
- cold_first_read_ms: median over fresh hosts of the first /api/read (local cloud, no injected
  latency): Entra token, STS exchange, clients built, Blob and S3 read.
- warm_read_ms: median /api/read on a host that has served one already.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from localcloud.cloud import LocalCloud
from localcloud.world import world_from_program
from shipping import build

FUNCTION_SRC = Path(__file__).resolve().parent.parent / "function_src"
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


def local_package() -> build.BuiltPackage:
    return build.build_package(FUNCTION_SRC, f"{sys.version_info[0]}.{sys.version_info[1]}")


def import_ms(package: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="crosscloud-bench-pkg-") as tmp:
        with zipfile.ZipFile(package) as archive:
            archive.extractall(tmp)
        site_packages = str(Path(tmp, build.SITE_PACKAGES))
        samples = []
        for _ in range(IMPORT_SAMPLES):
            probe = subprocess.run(  # noqa: S603 - our interpreter, our probe
                [sys.executable, "-I", "-S", "-c", _IMPORT_PROBE, tmp, site_packages],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
                env={"PATH": "/usr/bin:/bin"},
            )
            samples.append(float(probe.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def read_ms() -> tuple[float, float]:
    with LocalCloud(world_from_program()) as cloud:
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
    cold, warm = read_ms()
    return {
        "package_mb": package.path.stat().st_size / 1e6,
        "function_import_ms": import_ms(package.path),
        "cold_first_read_ms": cold,
        "warm_read_ms": warm,
    }
