"""The guard of the fast tier (tests/fast_tier.py): a test without the slow mark that spends too many CPU seconds (or
far too many wall seconds) fails the session when SEQ2SEQ_MAX_FAST_SECONDS is set, and nothing changes without it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = """
import time
import pytest

def test_quick():
    pass

def busy(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

def test_long():
    busy(0.3)

def test_waits():
    time.sleep(0.3)

def test_waits_long():
    time.sleep(0.7)

@pytest.mark.slow
def test_long_and_marked():
    busy(0.3)
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest("from tests.fast_tier import pytest_configure  # noqa: F401")
    pytester.makeini("[pytest]\nmarkers = slow: long")
    pytester.makepyfile(test_timed=TESTS)
    return pytester


def test_an_unmarked_test_over_the_limit_fails_the_session(suite: pytest.Pytester,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQ2SEQ_MAX_FAST_SECONDS", "0.2")
    result = suite.runpytest()
    result.assert_outcomes(passed=5)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*tests over 0.2 CPU s (or 0.6 s) without the slow mark*",
                                 "*CPU s, *s call test_timed.py::test_long"])
    over = result.stdout.str().split("without the slow mark")[1]
    assert "test_waits_long" in over  # a phase that waits is over only past three limits of wall time
    assert not re.search("test_waits$", over, re.M) and "test_long_and_marked" not in over


def test_without_the_variable_nothing_is_timed(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEQ2SEQ_MAX_FAST_SECONDS", raising=False)
    result = suite.runpytest()
    result.assert_outcomes(passed=5)
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.slow  # three processes start
def test_the_guard_sees_the_tests_of_every_worker(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQ2SEQ_MAX_FAST_SECONDS", "0.2")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))  # the workers import tests.fast_tier
    result = suite.runpytest_subprocess("-n", "2", "-p", "xdist")
    result.assert_outcomes(passed=5)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*tests over 0.2 CPU s*", "*CPU s, *s call test_timed.py::test_long"])
    over = result.stdout.str().split("without the slow mark")[1]
    assert not re.search("test_waits$", over, re.M)  # its CPU seconds came from the worker with its report
