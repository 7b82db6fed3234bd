"""Suite-wide pytest hooks: `make test` names each tier as it starts and sums them up at the end.

A run that spans two or more tiers (the whole suite) prints a header line when the first test of
a tier starts, and a line per tier (tests, seconds) before pytest's own final `N passed` line.
A run of one tier or one file prints nothing extra. The exit status is pytest's own.
"""

from __future__ import annotations

import time

import pytest

TIERS = {
    "tests/infra": "infra: the Pulumi program under mocks",
    "tests/shipping": "shipping: package build, One Deploy and blob upload against fakes",
    "tests/function": "function: the real function code against emulators",
    "policy/tests": "policy pack: every rule, the program's resources and broken variants",
    "tests/ci": "workflows: actionlint, pinned actions, no secrets",
    "tests/e2e": "end to end: the local cloud of `make demo`",
    "tests/teams": "teams: a foundation and two environments on the local cloud",
    "tests/localcloud": "local cloud: the emulators themselves",
    "tests/aws_readers": "AWS readers: the Lambda's code against fakes",
    "tests/preflight": "preflight: read-only subscription checks against a fake ARM",
}


def tier_of(nodeid: str) -> str:
    """The tier a test belongs to: its first two path segments (`tests/infra`, `policy/tests`)."""
    return "/".join(nodeid.split("::")[0].split("/")[:2])


class TierReport:
    def __init__(self, terminal: pytest.TerminalReporter) -> None:
        self.terminal = terminal
        self.current: str | None = None
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.active = False

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.active = len({tier_of(item.nodeid) for item in items}) > 1

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        tier = tier_of(nodeid)
        self.counts[tier] = self.counts.get(tier, 0) + 1
        if tier == self.current:
            return
        now = time.monotonic()
        if self.current is not None:
            self.seconds[self.current] += now - self.started[self.current]
        self.current, self.started[tier] = tier, now
        self.seconds.setdefault(tier, 0.0)
        if self.active:
            if self.terminal._tw.width_of_current_line:  # after -q's dots
                self.terminal.write("\n")
            self.terminal.write_line(f"== {TIERS.get(tier, tier)} ({tier})", bold=True)

    def pytest_terminal_summary(self) -> None:
        if self.current is not None:
            self.seconds[self.current] += time.monotonic() - self.started[self.current]
            self.current = None
        if not self.active:
            return
        self.terminal.write_sep("-", "tiers")
        for tier, count in self.counts.items():
            self.terminal.write_line(
                f"{tier:<17} {count:>4} tests {self.seconds[tier]:7.1f} s  {TIERS.get(tier, '')}"
            )


@pytest.hookimpl(trylast=True)  # after pytest's own terminal reporter is registered
def pytest_configure(config: pytest.Config) -> None:
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None:
        config.pluginmanager.register(TierReport(terminal), "crosscloud-tiers")
