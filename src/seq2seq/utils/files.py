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
    folder = _private_folder(destination)
    try:
        written = folder / destination.name
        yield written
        with open(written, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(written, 0o666 & ~_umask())
        os.replace(written, destination)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def atomic_directory(destination: str | Path, replace: bool = False) -> Iterator[Path]:
    """A temporary folder beside destination (whose parent must exist) to fill; the directory version of
    `atomic_path`.

    When the block succeeds its files are synced, the folder given a new folder's permissions and renamed to
    destination, which therefore appears complete or not at all. An existing empty destination is replaced; a
    non-empty one is an OSError unless replace: then it is moved aside, the new folder renamed in, and the old one
    deleted (two renames: a kill between them leaves neither under the name). The temporary (`.NAME.*.tmp`) is
    removed in every case, or by `remove_temporaries` after a kill.
    """
    destination = Path(destination)
    folder = _private_folder(destination)
    try:
        yield folder
        for file in (path for path in folder.rglob("*") if path.is_file()):
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        os.chmod(folder, 0o777 & ~_umask())
        _rename_into_place(folder, destination, replace)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _rename_into_place(folder: Path, destination: Path, replace: bool) -> None:
    """Rename folder to destination; with replace, a non-empty destination is moved aside first and deleted once
    folder took its name."""
    if not (replace and destination.is_dir() and any(destination.iterdir())):
        os.rename(folder, destination)  # replaces an empty directory; a non-empty one is an OSError
        return
    aside = _private_folder(destination)
    old = aside / destination.name
    try:
        os.rename(destination, old)
        try:
            os.rename(folder, destination)
        except OSError:
            os.rename(old, destination)  # the old one goes back
            raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def _private_folder(destination: Path) -> Path:
    """A new empty folder `.NAME.*.tmp` beside destination."""
    return Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=TEMPORARY_SUFFIX, dir=destination.parent))


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
