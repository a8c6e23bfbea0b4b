"""Where a command's output lines go: a file, written atomically, or stdout."""

from __future__ import annotations

import sys
from pathlib import Path

from seq2seq.errors import Seq2SeqError
from seq2seq.utils.files import write_text_atomically


def write_output(path: str | None, text: str) -> None:
    """text into the file at path (complete or not at all), or onto stdout when path is None."""
    if path is None:
        sys.stdout.write(text)
        return
    try:
        write_text_atomically(Path(path), text)
    except OSError as error:
        raise Seq2SeqError(f"{path}: cannot write: {error.strerror}") from error
