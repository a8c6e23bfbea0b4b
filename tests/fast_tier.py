"""The guard of the fast tier: a test without the slow mark that runs too long fails the session. Kept apart from
conftest.py (no torch import), so a pytest run that only needs the guard starts quickly."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator

import pytest

CPU_SECONDS = "cpu_seconds"
WALL_FACTOR = 3  # a phase that mostly waits is over the limit only when its wall time is this many limits


def cpu_seconds() -> float:
    """CPU seconds this process and its finished children have spent, all threads together."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class FastTierGuard:
    """Fails the session when a test without the slow mark spends more than `limit` CPU seconds in a phase (setup,
    call or teardown, as --durations lists them), or more than WALL_FACTOR limits of wall time: `pytest -m "not slow"`
    stays a quick loop. CPU time, measured where the test runs, does not grow when parallel workers share the cores.
    """

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.phase_started = 0.0
        self.over: list[str] = []

    def pytest_runtest_logstart(self) -> None:
        self.phase_started = cpu_seconds()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self) -> Iterator[None]:
        """Each phase's report carries the CPU seconds since the previous phase ended (or the test started)."""
        outcome = yield
        now = cpu_seconds()
        outcome.get_result().user_properties.append((CPU_SECONDS, now - self.phase_started))
        self.phase_started = now

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Runs where the reports gather (the controller under pytest-xdist); the CPU seconds came with the report."""
        cpu = dict(report.user_properties).get(CPU_SECONDS, report.duration)
        if "slow" not in report.keywords and (cpu > self.limit or report.duration > WALL_FACTOR * self.limit):
            self.over.append(f"{cpu:.1f} CPU s, {report.duration:.1f}s {report.when} {report.nodeid}")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.over and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.over:
            terminalreporter.section(f"tests over {self.limit:g} CPU s (or {WALL_FACTOR * self.limit:g} s) without "
                                     "the slow mark", red=True)
            for line in self.over:
                terminalreporter.line(line)


def pytest_configure(config: pytest.Config) -> None:
    """SEQ2SEQ_MAX_FAST_SECONDS (set by .ci/run) turns the guard on."""
    limit = os.environ.get("SEQ2SEQ_MAX_FAST_SECONDS")
    if limit:
        config.pluginmanager.register(FastTierGuard(float(limit)), "fast-tier-guard")
