"""The Pulumi program under mocks with many trusted identities (docs/design.md "Benchmarks":
the mocked program with 50 identities runs in seconds and grows linearly).

- program_2_identities_s: median wall time of `run_program()` with the program's own two
  identities (SAMI and UAMI);
- program_50_identities_s: the same with 50 extra principal ids (52 trusted identities: 52
  app-role assignments and a 52-entry `sub` list);
- program_50_vs_2_ratio: the second over the first. The program registers 47 resources with two
  identities and 97 with 52 (one app-role assignment each), so growing linearly in resources
  means a ratio of at most about 2; growing with identities squared would be hundreds.

One untimed run first, so imports and the stand-in package are not counted.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Mapping
from typing import Any

from localcloud.mocked_program import run_program

RUNS = 3
QUICK_RUNS = 1
"""`python -m bench --quick` (CI): one timed run each."""
EXTRA_IDENTITIES = 50


def _median_seconds(config: Mapping[str, Any], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run_program(config)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def run(quick: bool = False) -> dict[str, float]:
    runs = QUICK_RUNS if quick else RUNS
    extra = [
        str(uuid.uuid5(uuid.NAMESPACE_OID, f"bench-identity-{n}")) for n in range(EXTRA_IDENTITIES)
    ]
    run_program()
    two = _median_seconds({}, runs)
    fifty = _median_seconds({"extraPrincipalIds": extra}, runs)
    return {
        "program_2_identities_s": two,
        "program_50_identities_s": fifty,
        "program_50_vs_2_ratio": fifty / two,
    }
