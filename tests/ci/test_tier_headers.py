"""`make test` names each tier as it runs it and sums the tiers up before pytest's last line
(conftest.py at the repository root); a run of one tier prints nothing extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_suite(tmp_path: Path, *tiers: str, failing: str = "") -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text((REPO / "conftest.py").read_text())
    for tier in tiers:
        folder = tmp_path / tier
        folder.mkdir(parents=True)
        body = "def test_one():\n    assert True\n\ndef test_two():\n    assert True\n"
        if tier == failing:
            body += "\ndef test_three():\n    assert False\n"
        (folder / f"test_{folder.name}.py").write_text(body)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tiers],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_each_tier_gets_a_header_and_a_summary_line(tmp_path: Path) -> None:
    run = run_suite(tmp_path, "tests/infra", "policy/tests")
    lines = run.stdout.splitlines()
    assert run.returncode == 0, run.stdout
    assert "== infra: the Pulumi program under mocks (tests/infra)" in lines
    assert any(line.startswith("== policy pack") for line in lines)
    assert any(line.split()[:3] == ["tests/infra", "2", "tests"] for line in lines)
    assert lines[-1].startswith("4 passed")  # pytest's own last line stays last


def test_a_failure_keeps_pytests_exit_status(tmp_path: Path) -> None:
    run = run_suite(tmp_path, "tests/infra", "tests/e2e", failing="tests/e2e")
    assert run.returncode == 1, run.stdout
    assert "== end to end: the local cloud of `make demo` (tests/e2e)" in run.stdout.splitlines()
    assert run.stdout.splitlines()[-1].startswith("1 failed, 4 passed")


def test_one_tier_alone_prints_nothing_extra(tmp_path: Path) -> None:
    run = run_suite(tmp_path, "tests/infra")
    assert run.returncode == 0
    assert not [line for line in run.stdout.splitlines() if line.startswith("== ")]
    assert "tiers" not in run.stdout


def test_every_tier_of_the_suite_has_a_name() -> None:
    import conftest

    tiers = {f"tests/{d.name}" for d in (REPO / "tests").iterdir() if any(d.glob("test_*.py"))}
    assert tiers | {"policy/tests"} <= set(conftest.TIERS)
