"""Time per tier, printed at the end of every run (`make test` shows where CI's budget goes).

A tier is the folder under tests/ a test lives in (unit, review, engine, cluster, ...); its
time is the sum of its tests' setup, call and teardown, so module fixtures count where used.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest


class TierClock:
    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.outcomes: defaultdict[str, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )

    @staticmethod
    def tier(report: pytest.TestReport) -> str:
        # The node id's path is relative to the rootdir whatever the test did to its cwd
        # (report.fspath is relative too, and tests that chdir would misfile it).
        parts = Path(report.nodeid.split("::", 1)[0]).parts
        if parts[:1] != ("tests",):
            return "other"
        return parts[1] if len(parts) > 2 else "top"

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        tier = self.tier(report)
        self.seconds[tier] += report.duration
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.outcomes[tier][report.outcome] += 1

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.seconds:
            return
        write = terminalreporter.write_line
        terminalreporter.section("time per tier")
        write(f"{'tier':<12} {'tests':>6} {'failed':>7} {'seconds':>9}")
        for tier, seconds in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            counts = self.outcomes[tier]
            write(f"{tier:<12} {sum(counts.values()):>6} {counts['failed']:>7} {seconds:>9.1f}")
        write(f"{'all':<12} {'':>6} {'':>7} {sum(self.seconds.values()):>9.1f}")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(TierClock(), "servestack-tier-clock")
