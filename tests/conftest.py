"""Shared fixtures: toy copy/reverse data and the path of the optional shared data sets; the guard of the fast tier."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from seq2seq.data.pairs import Pair

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SYMBOLS = "abcdefghij"


def toy_pairs(task: str, count: int, seed: int) -> list[Pair]:
    """Sequences of 3-8 symbols (space separated) and their copy or reversal."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        symbols = [rng.choice(SYMBOLS) for _ in range(rng.randint(3, 8))]
        target = symbols if task == "copy" else symbols[::-1]
        pairs.append(Pair(" ".join(symbols), " ".join(target)))
    return pairs


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder beside the repository; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("shared data sets not available")
    return SHARED_DATA


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run several times faster on one thread than on two busy shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
