"""The guard of the fast tier: a test without the slow mark that runs too long fails the session. Kept apart from
conftest.py (no torch import), so a pytest run that only needs the guard starts quickly."""

from __future__ import annotations

import os

import pytest


class FastTierGuard:
    """Fails the session when a test without the slow mark spends more than `limit` seconds in a phase (setup, call
    or teardown, as --durations lists them): `pytest -m "not slow"` stays a quick loop."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.over: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.duration > self.limit and "slow" not in report.keywords:
            self.over.append(f"{report.duration:.1f}s {report.when} {report.nodeid}")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.over and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.over:
            terminalreporter.section(f"tests over {self.limit:g} s without the slow mark", red=True)
            for line in self.over:
                terminalreporter.line(line)


def pytest_configure(config: pytest.Config) -> None:
    """SEQ2SEQ_MAX_FAST_SECONDS (set by .ci/run) turns the guard on."""
    limit = os.environ.get("SEQ2SEQ_MAX_FAST_SECONDS")
    if limit:
        config.pluginmanager.register(FastTierGuard(float(limit)), "fast-tier-guard")
