"""Process-wide settings for long runs of the command line: kernel cache sizes and malloc's thresholds."""

from __future__ import annotations

import ctypes
import os

KERNEL_CACHE_ENTRIES = {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "256", "LRU_CACHE_CAPACITY": "16"}


def cap_kernel_caches() -> None:
    """oneDNN keeps a compiled kernel for every operation shape it meets, and PyTorch's layer over it its own
    entries, up to 1,024 of each by default; batches of varying lengths keep bringing new shapes, and with no caps a
    15-minute eng-fra training run peaked at 1.27 GiB. oneDNN's cache must hold a run's working set, about 150
    shapes: with 16 entries 200 eng-fra steps rebuilt kernels 6,800 times (3.3 s, about a tenth of their time), with
    256 only once per shape. PyTorch's cache changed no such count at 16 or 256 entries, and 16 saved 58 MB of
    the 200 steps' peak.
    Read at the first matrix product, and set only where the user has not chosen."""
    for name, entries in KERNEL_CACHE_ENTRIES.items():
        os.environ.setdefault(name, entries)


MALLOC_MMAP_THRESHOLD, MALLOC_TRIM_THRESHOLD = -3, -1  # glibc's mallopt parameters
HEAP_BLOCKS_UP_TO = 32 << 20  # glibc's largest mmap threshold
HEAP_KEEPS_FREE = 256 << 20


def keep_freed_memory_in_heap() -> bool:
    """Have glibc's malloc serve blocks up to 32 MiB from its heap and keep up to 256 MiB of freed memory there.

    By default it maps large blocks fresh from the kernel and unmaps them when freed, with thresholds it moves as it
    goes. A training step's largest buffers (the (N, V) exponentials, the output layer's weight copy and gradient,
    about 20 MB each on eng-fra) could then be mapped and page-faulted in anew at every step: in 4 of 10 runs of 150
    eng-fra steps, 170-1,330 faults per step (up to 4.6 ms of system time), against 67-119 in all 6 runs with these
    settings, at the same peak memory. Returns whether the settings took (only glibc has them).
    """
    try:
        mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the C library the interpreter runs on
    except (OSError, TypeError):  # none to load by that name (Windows)
        return False
    if mallopt is None:
        return False
    return bool(mallopt(MALLOC_MMAP_THRESHOLD, HEAP_BLOCKS_UP_TO) and mallopt(MALLOC_TRIM_THRESHOLD, HEAP_KEEPS_FREE))


def configure_process() -> None:
    """What the command line sets before it works: capped kernel caches, large blocks kept in malloc's heap."""
    cap_kernel_caches()
    keep_freed_memory_in_heap()
