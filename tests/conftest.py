"""Shared fixtures: toy copy/reverse data and the path of the optional shared data sets; the guard of the fast tier
(tests/fast_tier.py) is turned on here."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from seq2seq.data.pairs import Pair
from tests.fast_tier import pytest_configure  # noqa: F401  (a hook: SEQ2SEQ_MAX_FAST_SECONDS turns the guard on)

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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--examples", action="store_true", help="run the commands of the README and docs/ "
                     "(tests/test_examples.py, marked examples)")


LONGEST_FIRST = ("tests/training/test_learning.py",)
"""Modules whose tests take the longest (minutes of training): started first, so that parallel workers do not end
waiting on one of them."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest modules first; the docs' examples take minutes: they run only with --examples."""
    items.sort(key=lambda item: not item.nodeid.startswith(LONGEST_FIRST))  # stable: each module stays whole
    if config.getoption("--examples"):
        return
    skip = pytest.mark.skip(reason="runs the docs' examples: pytest --examples tests/test_examples.py")
    for item in items:
        if "examples" in item.keywords:
            item.add_marker(skip)
