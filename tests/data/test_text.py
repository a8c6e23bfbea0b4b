"""Plain text for language models: entries of files and folders, the token stream, and its training windows."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from seq2seq.data.lm_text import count_characters, encode_stream
from seq2seq.data.text import read_entries, windows
from seq2seq.data.vocab import BOS_ID, EOS_ID, UNK_ID, Vocab
from seq2seq.errors import DataError

FORTUNES = "A fool and\nhis money.\n%\nSecond one.\n%\n%\n  \n%\nLast\r\nwith CRLF\n"


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


@pytest.mark.parametrize(("mode", "expected"), [
    ("file", ["A fool and\nhis money.\n%\nSecond one.\n%\n%\n  \n%\nLast\nwith CRLF"]),
    ("line", ["A fool and", "his money.", "%", "Second one.", "%", "%", "%", "Last", "with CRLF"]),
    ("delimiter", ["A fool and\nhis money.", "Second one.", "Last\nwith CRLF"]),  # blank entries dropped
])
def test_read_entries_modes(tmp_path: Path, mode: str, expected: list[str]) -> None:
    assert read_entries(write(tmp_path / "f.txt", FORTUNES), mode) == expected


def test_read_entries_with_another_delimiter(tmp_path: Path) -> None:
    path = write(tmp_path / "f.txt", "one\n==\ntwo\n%\nthree\n")
    assert read_entries(path, "delimiter", "==") == ["one", "two\n%\nthree"]


def test_read_entries_of_a_folder_in_path_order_without_hidden_files(tmp_path: Path) -> None:
    write(tmp_path / "b.txt", "bee\n")
    write(tmp_path / "a" / "z.txt", "zed\nzed again\n")
    write(tmp_path / ".hidden.txt", "secret\n")
    write(tmp_path / ".git" / "config", "secret too\n")
    write(tmp_path / "c.txt", "")  # an empty file adds nothing
    assert read_entries(tmp_path) == ["zed\nzed again", "bee"]
    assert read_entries(tmp_path, "line") == ["zed", "zed again", "bee"]


@pytest.mark.parametrize(("data", "message"), [
    ("", "no text (the file is empty)"),
    ("\n  \n\n", "no text (the file is empty)"),
    ("ok\nbad\x00byte\n", ":2: NUL byte (a binary file, not text)"),
    (b"fine\n\xff\n", ":2: not valid UTF-8 (byte 0xff at column 1)"),
])
def test_read_entries_bad_files(tmp_path: Path, data: str | bytes, message: str) -> None:
    path = write(tmp_path / "f.txt", data)
    with pytest.raises(DataError) as error:
        read_entries(path)
    assert str(error.value) == (f"{path}{message}" if message.startswith(":") else f"{path}: {message}")


def test_read_entries_missing_path_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing: no such file or folder$"):
        read_entries(tmp_path / "missing")
    write(tmp_path / "empty" / ".hidden", "x\n")
    with pytest.raises(DataError, match=r"empty: no files in this folder$"):
        read_entries(tmp_path / "empty")


def test_count_characters_counts_one_end_per_entry(tmp_path: Path) -> None:
    assert count_characters([]) == 0
    assert count_characters(["ab", "", "cde"]) == 3 + 1 + 4
    path = write(tmp_path / "f.txt", "first line\nsecond\n")  # as line entries: the file's own characters
    assert count_characters(read_entries(path, "line")) == len("first line\nsecond\n")


def test_encode_stream_wraps_each_entry_in_bos_eos() -> None:
    vocab = Vocab(["a", "b"])  # a=4, b=5
    assert encode_stream([["a", "b"], [], ["b", "x"]], vocab) == [BOS_ID, 4, 5, EOS_ID, BOS_ID, EOS_ID,
                                                                   BOS_ID, 5, UNK_ID, EOS_ID]
    assert encode_stream([], vocab) == []


@pytest.mark.parametrize("length", [1, 2, 3, 4, 9, 10, 50])
def test_windows_cover_the_stream_once(length: int) -> None:
    """Predicted tokens (tgt[1:]) of consecutive windows are the stream after its first token, each exactly once;
    a window's first token is the previous window's last."""
    stream = list(range(10, 20))  # 10 ids
    found = windows(stream, length)
    assert all(example.src == [] for example in found)
    assert [t for example in found for t in example.tgt[1:]] == stream[1:]
    assert all(len(example.tgt) == length + 1 for example in found[:-1]) and len(found[-1].tgt) <= length + 1
    assert all(one.tgt[-1] == other.tgt[0] for one, other in itertools.pairwise(found))
    assert len(found) == -(-(len(stream) - 1) // length)


def test_windows_of_tiny_streams() -> None:
    assert windows([], 3) == [] and windows([7], 3) == []  # nothing to predict
    assert [e.tgt for e in windows([7, 8], 3)] == [[7, 8]]
