"""`make demo` itself: all outcomes met, and nothing left running afterwards. (How long it takes
is its own last lines' `Total` figure, not an assertion: a busy machine is slower.)"""

from __future__ import annotations

import re
import subprocess
import sys

from localcloud.cloud import REPO


def test_make_demo_meets_every_outcome_and_leaves_nothing_running() -> None:
    demo = subprocess.run(
        [sys.executable, "-m", "localcloud.demo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,  # a hang fails the test instead of holding the suite
        check=False,
    )
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output
    last = demo.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"demo: (\d+)/\1 expected outcomes", last), output
    # The demo checks its own listeners and child processes after stopping.
    assert "nothing left running" in demo.stdout, output
    assert re.search(r"^Total \d+\.\d s$", demo.stdout, re.M), output
    # Fits a 100-column terminal, explains its columns, and says what it does while starting.
    assert max(len(line) for line in demo.stdout.splitlines()) <= 100, output
    assert re.search(r"^  tok +\S", demo.stdout, re.M), output
    assert re.search(r"^  sts +\S", demo.stdout, re.M), output
    assert len(re.findall(r"^ +\d+\.\d s  function host \S+ ready", demo.stdout, re.M)) >= 12
