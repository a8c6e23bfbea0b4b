"""Process settings of the command line."""

from __future__ import annotations

import os
import resource
import sys

import pytest
import torch

from seq2seq import runtime


def test_kernel_caches_are_capped_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    monkeypatch.setenv("LRU_CACHE_CAPACITY", "3")
    runtime.cap_kernel_caches()
    name = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
    assert os.environ[name] == runtime.KERNEL_CACHE_ENTRIES[name]
    assert os.environ["LRU_CACHE_CAPACITY"] == "3"


def _faults_to_fill_fresh_tensors_of(*megabytes: int) -> int:
    """Minor page faults while tensors of these sizes exist at once, then are freed (like a step's buffers)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [torch.ones(size << 18) for size in megabytes]
    del blocks
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_large_blocks_are_reused_without_page_faults() -> None:
    """By default every round maps and faults in about 15,000 fresh pages; kept in the heap, only the first rounds
    do, while the heap grows to hold them."""
    assert runtime.keep_freed_memory_in_heap()
    faults = [_faults_to_fill_fresh_tensors_of(24, 16, 20) for _ in range(4)]
    assert faults[-1] < 1000, faults
