"""Plain text for language models: a file or a folder -> entries -> one token stream -> training windows.

An entry is a unit of text that generation can end with: a whole file, a line, or the text between delimiter
lines (the fortune format, entries separated by lines holding only `%`). The stream is `<s> entry </s>` for
every entry in order; training reads it in non-overlapping windows whose hidden state starts at zero (truncated
backpropagation through time without carrying the state from one window to the next).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from seq2seq.data.examples import Example
from seq2seq.data.pairs import read_lines
from seq2seq.errors import DataError


def read_entries(source: str | Path, entries: str = "file", delimiter: str = "%") -> list[str]:
    """Entries of a text file, or of every file under a folder (in path order, hidden files skipped).

    Args:
        source: a UTF-8 text file or a folder of them.
        entries: `file` (each file is one entry), `line` (each non-blank line) or `delimiter` (the text between
            lines equal to `delimiter`).
        delimiter: the separator line for `entries="delimiter"`.

    Line endings become `\\n`; the newline that ends an entry is not part of it (`</s>` stands for it).
    Raises DataError for a missing path, an empty text, bytes that are not UTF-8 or NUL bytes (binary files).
    """
    path = Path(source)
    found = [entry for file in _text_files(path) for entry in _split(_lines(file), entries, delimiter)]
    if not found:
        raise DataError(f"{path}: no text (the file is empty)")
    return found


def _text_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder")
    files = sorted(p for p in path.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not files:
        raise DataError(f"{path}: no files in this folder")
    return files


def _lines(path: Path) -> list[str]:
    lines = []
    for number, line in read_lines(path):
        if "\x00" in line:
            raise DataError(f"{path}:{number}: NUL byte (a binary file, not text)")
        lines.append(line)
    return lines


def _split(lines: list[str], entries: str, delimiter: str) -> list[str]:
    if entries == "file":
        groups = [lines]
    elif entries == "line":
        groups = [[line] for line in lines]
    else:
        groups = [[]]
        for line in lines:
            if line == delimiter:
                groups.append([])
            else:
                groups[-1].append(line)
    texts = ("\n".join(group) for group in groups)
    return [text for text in texts if text.strip()]


def windows(stream: Sequence[int], length: int) -> list[Example]:
    """Non-overlapping training windows of `length` predicted tokens (the last may be shorter).

    Each Example's tgt holds `length + 1` ids, read as input [:-1] and target [1:], so consecutive windows share
    one token; src is empty (a language model has no source).
    """
    return [Example([], list(stream[start:start + length + 1])) for start in range(0, len(stream) - 1, length)]
