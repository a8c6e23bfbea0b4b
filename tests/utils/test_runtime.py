"""Process settings of the command line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from seq2seq.utils import runtime


def test_kernel_caches_are_capped_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    monkeypatch.setenv("LRU_CACHE_CAPACITY", "3")
    runtime.cap_kernel_caches()
    name = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
    assert os.environ[name] == runtime.KERNEL_CACHE_ENTRIES[name]
    assert os.environ["LRU_CACHE_CAPACITY"] == "3"


FAULTS_PER_ROUND = """
import resource, sys, torch
from seq2seq.utils import runtime
if not runtime.keep_freed_memory_in_heap():
    sys.exit("mallopt did not take")
for _ in range(8):  # a step's worth of large buffers, made and freed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [torch.ones(megabytes << 18) for megabytes in (24, 16, 20)]
    del blocks
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults_per_round_kept_in_heap() -> list[int]:
    """Minor page faults of each round of making and freeing 60 MB of tensors, in a fresh process with the setting."""
    run = subprocess.run([sys.executable, "-c", FAULTS_PER_ROUND], check=True, capture_output=True, text=True)
    return [int(line) for line in run.stdout.split()]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_large_blocks_are_reused_without_page_faults() -> None:
    """With glibc's default thresholds every round maps and faults in about 15,000 fresh pages; kept in the heap,
    only the first rounds do, while the heap grows to hold them."""
    assert _faults_per_round_kept_in_heap()[-1] < 1000
