"""The run directory of a training: refused early when it cannot be written, locked while one training writes it."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path

from seq2seq.errors import RunDirectoryError

logger = logging.getLogger(__name__)

OLD_LOCK_NAME = "train.lock"
"""The lock file of earlier versions, which stayed in the run directory; removed when a training takes the lock."""

WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG}


def check_writable(out_dir: str | Path) -> None:
    """Raise RunDirectoryError, before any work, when out_dir is a file, lies under a file, cannot be written, or
    is locked by another training."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RunDirectoryError(f"{out}: is a file, not a run directory (choose another --out)")
    existing = next(folder for folder in (out, *out.parents) if folder.exists() or folder == Path(folder.anchor))
    if not existing.is_dir():
        raise RunDirectoryError(f"{out}: cannot be a run directory: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunDirectoryError(f"{existing}: not writable (read-only file system or no permission); choose "
                                "another --out")
    if existing == out:
        with locked(out):
            pass


@contextmanager
def locked(out_dir: str | Path) -> Iterator[None]:
    """Hold out_dir's lock (creating the directory) for the block; another holder raises RunDirectoryError.

    The lock is an flock on the directory itself: no file is written, and the kernel releases it when the holding
    process ends, however it ends, so a killed run never leaves the directory locked."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as error:
        raise RunDirectoryError(f"{out}: cannot write the run directory: {error.strerror}") from None
    try:
        _lock(descriptor, out)
        _remove_old_lock_file(out)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _lock(descriptor: int, out: Path) -> None:
    """Take the lock without waiting; where the file system has no locks, warn and let the run go unlocked."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RunDirectoryError(f"{out}: another training is writing this run directory; wait for it to end or "
                                "choose another --out") from None
    except OSError as error:
        logger.warning("%s: cannot lock the run directory (%s); make sure no other training writes it", out,
                       error.strerror)


def _remove_old_lock_file(out: Path) -> None:
    """Remove the lock file an earlier version left in out, if any (best effort)."""
    with suppress(OSError):
        (out / OLD_LOCK_NAME).unlink(missing_ok=True)


@contextmanager
def writing(out_dir: str | Path, lock: bool = True) -> Iterator[None]:
    """The block writes out_dir: holding its lock (when lock), and with a failed write (disk full, read-only,
    permission) reported as one RunDirectoryError naming the directory."""
    try:
        with locked(out_dir) if lock else nullcontext():
            yield
    except OSError as error:
        if error.errno not in WRITE_ERRNOS:
            raise
        raise RunDirectoryError(f"{out_dir}: cannot write the run directory: {error.strerror}; the last complete "
                                "checkpoint is kept") from None
