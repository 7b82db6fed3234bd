"""The deployment package: its size, how fast the app imports from it, and reads on a fresh host.

Flex mounts the package read-only
(https://learn.microsoft.com/azure/azure-functions/run-functions-from-deployment-package), so a
cold instance can use only the bytecode the package carries (shipping/bytecode.py). Every figure
compares the package as shipped with the same package with its bytecode removed (what every cold
start paid before it shipped any), measured alternately in the same run.

- package_mb: size of the zip `python -m shipping.build --local` makes (what the local cloud runs:
  the deployed one differs in its wheels' and pycs' Python version).
- function_import_ms: median over fresh interpreters (`python -I -S -B`, only the standard
  library, the package's site-packages and the app root on sys.path, as in the Python worker) of
  the time `import function_app` takes, the package unpacked into a read-only folder;
  function_import_source_ms: the same without bytecode; cold_import_ratio = the first / the
  second (goal: at most 0.4).
- cold_start_ms: median over fresh hosts of launching the host process (localcloud/function_host.py:
  interpreter start, `import function_app`, functions indexed, listening) until its first
  /api/read is answered - what a request that wakes an instance waits for, on the local cloud
  without injected latency; cold_start_source_ms the same without bytecode.
- cold_first_read_ms: the first /api/read alone on such a fresh host (Entra token, STS exchange,
  clients built, Blob and S3 read); cold_first_read_source_ms without bytecode.
- warm_read_ms: median /api/read on a host that has served one already.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from localcloud.cloud import LocalCloud, local_package
from localcloud.world import world_from_program
from shipping import build


@dataclass(frozen=True)
class Samples:
    """How many of each measurement; `--quick` takes fewer through the same code."""

    imports: int
    cold: int
    warm: int


FULL = Samples(imports=9, cold=5, warm=30)
QUICK = Samples(imports=3, cold=2, warm=5)
APP = "uami"

_IMPORT_PROBE = """
import sys, time
sys.path[:0] = [sys.argv[2], sys.argv[1]]
started = time.perf_counter()
import function_app
print((time.perf_counter() - started) * 1000)
"""


def without_bytecode(package: build.BuiltPackage, directory: Path) -> build.BuiltPackage:
    """The same zip minus every `__pycache__` entry: the package as it shipped before."""
    with zipfile.ZipFile(package.path) as archive:
        kept = [info for info in archive.infolist() if "__pycache__/" not in info.filename]
        if len(kept) == len(archive.infolist()):
            raise RuntimeError(f"{package.path} carries no bytecode: nothing to compare with")
        path = directory / "package-without-bytecode.zip"
        with zipfile.ZipFile(path, "w") as stripped:
            for info in kept:
                stripped.writestr(info, archive.read(info))
    return build.BuiltPackage(path, build.file_sha256(path))


@contextmanager
def read_only_copy(package: Path) -> Iterator[Path]:
    """The package unpacked into a folder nobody may write, as Flex mounts it."""
    with tempfile.TemporaryDirectory(prefix="crosscloud-bench-pkg-") as tmp:
        root = Path(tmp, "wwwroot")
        with zipfile.ZipFile(package) as archive:
            archive.extractall(root)
        paths = [root, *root.rglob("*")]
        for path in paths:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield root
        finally:
            for path in paths:
                path.chmod(0o755 if path.is_dir() else 0o644)


def _import_once(root: Path) -> float:
    probe = subprocess.run(  # noqa: S603 - our interpreter, our probe
        [
            sys.executable,
            "-I",
            "-S",
            "-B",
            "-c",
            _IMPORT_PROBE,
            *(str(root), str(root / build.SITE_PACKAGES)),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=root,
        env={"PATH": "/usr/bin:/bin"},
    )
    return float(probe.stdout.strip().splitlines()[-1])


def import_ms(shipped_root: Path, source_root: Path, samples: int) -> tuple[float, float]:
    """Median `import function_app` time from each unpacked package, alternating (one untimed
    run each first: the operating system's file cache is then warm for both alike)."""
    _import_once(shipped_root)
    _import_once(source_root)
    timed = [(_import_once(shipped_root), _import_once(source_root)) for _ in range(samples)]
    return statistics.median(s for s, _ in timed), statistics.median(s for _, s in timed)


@dataclass(frozen=True)
class Cold:
    start_ms: float
    first_read_ms: float


def read_ms(
    package: build.BuiltPackage, roots: dict[str, Path], samples: Samples
) -> tuple[dict[str, Cold], float]:
    """Cold figures per unpacked package of `roots` (fresh hosts of one cloud, taking turns), and
    the warm read on the package as shipped."""
    with LocalCloud(world_from_program(), package=package) as cloud:
        params = {"name": cloud.world.shared_names()[0]}

        def read() -> float:
            reply = cloud.call(APP, "read", params)
            if reply.status != 200:
                raise RuntimeError(f"/api/read answered {reply.status}: {reply.body}")
            return reply.ms

        read()  # the cloud's own first request (fakes' caches, OS file cache) is not counted
        host = cloud.hosts[APP]
        shipped_root = host.app_root
        timed: dict[str, list[tuple[float, float]]] = {label: [] for label in roots}
        for _ in range(samples.cold):
            for label, root in roots.items():
                host.stop()
                host.app_root = root
                started = time.perf_counter()
                host.launch(cloud.tls)
                host.wait_ready()
                first = read()
                timed[label].append(((time.perf_counter() - started) * 1000, first))
        host.stop()
        host.app_root = shipped_root
        host.launch(cloud.tls)
        host.wait_ready()
        read()
        warm = [read() for _ in range(samples.warm)]
    cold = {
        label: Cold(
            statistics.median(start for start, _ in runs),
            statistics.median(first for _, first in runs),
        )
        for label, runs in timed.items()
    }
    return cold, statistics.median(warm)


def run(quick: bool = False) -> dict[str, float]:
    samples = QUICK if quick else FULL
    package = local_package()
    with (
        tempfile.TemporaryDirectory(prefix="crosscloud-bench-") as tmp,
        read_only_copy(package.path) as shipped_root,
        read_only_copy(without_bytecode(package, Path(tmp)).path) as source_root,
    ):
        shipped_ms, source_ms = import_ms(shipped_root, source_root, samples.imports)
        cold, warm = read_ms(package, {"shipped": shipped_root, "source": source_root}, samples)
    return {
        "package_mb": package.path.stat().st_size / 1e6,
        "function_import_ms": shipped_ms,
        "function_import_source_ms": source_ms,
        "cold_import_ratio": shipped_ms / source_ms,
        "cold_start_ms": cold["shipped"].start_ms,
        "cold_start_source_ms": cold["source"].start_ms,
        "cold_first_read_ms": cold["shipped"].first_read_ms,
        "cold_first_read_source_ms": cold["source"].first_read_ms,
        "warm_read_ms": warm,
    }
