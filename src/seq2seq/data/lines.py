"""Text files read line by line without torch, and the Pair record that the readers of parallel text, labelled text
and transcribed audio give."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from seq2seq.errors import DataError


class Pair(NamedTuple):
    """One source text and its target text, with where it came from (for error messages)."""

    src: str
    tgt: str
    origin: str = ""


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, text without newline), reading one line at a time (a file larger than memory too); lines
    end at \\n, \\r\\n or \\r; bad UTF-8 raises DataError naming the line and column."""
    path = Path(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed by the with below, inside the generator)
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror}") from error
    number = 0
    with handle:
        for raw in handle:
            if number == 0:  # files saved by Windows editors may start with a byte order mark
                raw = raw.removeprefix(codecs.BOM_UTF8)
            for line in _lines_of(raw, path, number) if raw else ():
                number += 1
                yield number, line


def _lines_of(raw: bytes, path: Path, before: int) -> list[str]:
    """The lines of one chunk of a file ending at its first \\n (or at the end); a \\r inside ends a line too (the line
    ends of bytes.splitlines). before: the lines read before the chunk."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        prefix = raw[:error.start]
        line_start = max(prefix.rfind(b"\n"), prefix.rfind(b"\r")) + 1
        number = before + len(prefix[:line_start].splitlines()) + 1
        raise DataError(f"{path}:{number}: not valid UTF-8 (byte 0x{raw[error.start]:02x} at column "
                        f"{error.start - line_start + 1})") from None
    text = text.replace("\r\n", "\n")
    if text.endswith(("\n", "\r")):
        text = text[:-1]
    return text.replace("\r", "\n").split("\n")
