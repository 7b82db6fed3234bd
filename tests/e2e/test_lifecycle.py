"""`make demo` itself: all outcomes met, under a minute, and nothing left running afterwards."""

from __future__ import annotations

import re
import subprocess
import sys
import time

from localcloud.cloud import REPO


def test_make_demo_meets_every_outcome_and_leaves_nothing_running() -> None:
    started = time.monotonic()
    demo = subprocess.run(
        [sys.executable, "-m", "localcloud.demo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output
    last = demo.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"demo: (\d+)/\1 expected outcomes", last), output
    # The demo checks its own listeners and child processes after stopping.
    assert "nothing left running" in demo.stdout, output
    assert elapsed < 60, f"make demo took {elapsed:.0f} s"
