"""Atomic file writes: whatever is written appears complete under its name, or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"


@contextmanager
def atomic_path(destination: str | Path) -> Iterator[Path]:
    """A temporary path beside destination (whose folder must exist) to write to.

    When the block succeeds the file is synced, given the permissions of a new file and renamed over destination, so
    a reader, or a process killed at any moment, sees the old file or the new one, never part of one. The temporary
    lives in a private folder (`.NAME.*.tmp`), removed in every case, or by `remove_temporaries` after a kill.
    """
    destination = Path(destination)
    folder = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=TEMPORARY_SUFFIX, dir=destination.parent))
    try:
        written = folder / destination.name
        yield written
        with open(written, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(written, 0o666 & ~_umask())
        os.replace(written, destination)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_text_atomically(destination: str | Path, text: str) -> None:
    """Write text (UTF-8) to destination through `atomic_path`."""
    with atomic_path(destination) as temporary:
        temporary.write_text(text, encoding="utf-8")


def remove_temporaries(directory: str | Path, pattern: str = "*") -> None:
    """Delete the temporaries that a process killed inside `atomic_path` left in directory (names matching
    `.PATTERN.*.tmp`; files of that name too, as earlier versions wrote)."""
    for leftover in Path(directory).glob(f".{pattern}.*{TEMPORARY_SUFFIX}"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
