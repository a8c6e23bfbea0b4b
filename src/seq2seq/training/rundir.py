"""The run directory of a training: refused early when it cannot be written, locked while one training writes it."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import IO

from seq2seq.errors import RunDirectoryError

logger = logging.getLogger(__name__)

LOCK_NAME = "train.lock"
"""The lock file: flock'ed by the training that writes the directory; the kernel releases it when that process
ends, however it ends, so a killed run never leaves the directory locked."""

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
    """Hold out_dir's lock (creating the directory) for the block; another holder raises RunDirectoryError."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = open(out / LOCK_NAME, "a+", encoding="utf-8")  # noqa: SIM115 (held open for the block)
    except OSError as error:
        raise RunDirectoryError(f"{out}: cannot write the run directory: {error.strerror}") from None
    try:
        if _lock(handle, out):
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n")
            handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock


def _lock(handle: IO[str], out: Path) -> bool:
    """Take the lock without waiting; False where the file system has no locks (then the run goes unlocked)."""
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        raise RunDirectoryError(f"{out}: another training (pid {holder}) is writing this run directory; wait for it "
                                "to end or choose another --out") from None
    except OSError as error:
        logger.warning("%s: cannot lock the run directory (%s); make sure no other training writes it", out,
                       error.strerror)
        return False
    return True


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
