"""Tests for seq2seq.data.pairs and data.examples: readers, one-line error messages, dev split, encoding, bucketing
and padding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seq2seq.data.examples import Example, encode_pairs
from seq2seq.data.pairs import (
    Pair,
    batch_order,
    collate,
    pad,
    read_lines,
    read_pairs,
    split_batch,
    split_dev,
    token_batch_starts,
)
from seq2seq.data.tokenizers import CharTokenizer, WordTokenizer
from seq2seq.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocab
from seq2seq.errors import DataError


def write(path: Path, data: str | bytes) -> str:
    """Write text (UTF-8) or raw bytes and return the path as a string."""
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return str(path)


def error_of(spec: str) -> str:
    """The DataError message read_pairs raises for spec; it must be one line."""
    with pytest.raises(DataError) as info:
        read_pairs(spec)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---- readers
def test_tsv_ignores_attribution_column_and_blank_lines(tmp_path: Path) -> None:
    """Columns after the second (Tatoeba/Anki attribution) are ignored; blank lines are skipped."""
    text = "Go.\tVa !\tCC-BY 2.0 (France) #2877272\n\n  \nHi.\tSalut !\t#538123\n"
    spec = write(tmp_path / "fra.txt", text)
    pairs = read_pairs(spec)
    assert [(p.src, p.tgt) for p in pairs] == [("Go.", "Va !"), ("Hi.", "Salut !")]
    assert pairs[1].origin == f"{spec}:4"


def test_tsv_strips_windows_line_endings(tmp_path: Path) -> None:
    """CRLF files read the same as LF files."""
    spec = write(tmp_path / "crlf.tsv", "a b\tb a\r\nc\td\r\n")
    assert [(p.src, p.tgt) for p in read_pairs(spec)] == [("a b", "b a"), ("c", "d")]


def test_utf8_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    """A leading UTF-8 BOM (Windows editors) is not part of the first source."""
    spec = write(tmp_path / "bom.tsv", "\ufeffhello\tbonjour\n".encode())
    assert read_pairs(spec)[0].src == "hello"


def test_aligned_files(tmp_path: Path) -> None:
    """`src,tgt` pairs line i of one file with line i of the other."""
    src = write(tmp_path / "a.txt", "one\ntwo\nthree\n")
    tgt = write(tmp_path / "b.txt", "un\ndeux\ntrois\n")
    pairs = read_pairs(f"{src},{tgt}")
    assert [(p.src, p.tgt) for p in pairs] == [("one", "un"), ("two", "deux"), ("three", "trois")]


def test_jsonl(tmp_path: Path) -> None:
    """One object per line with src and tgt; other fields and blank lines are ignored."""
    lines = [json.dumps({"src": "hello", "tgt": "bonjour", "id": 1}), "",
             json.dumps({"src": "a\tb", "tgt": "c"})]
    spec = write(tmp_path / "d.jsonl", "\n".join(lines) + "\n")
    assert [(p.src, p.tgt) for p in read_pairs(spec)] == [("hello", "bonjour"), ("a\tb", "c")]


# ---- bad input: one line naming file, line and problem
def test_line_without_tab(tmp_path: Path) -> None:
    """A line with no tab names file:line and the missing tab."""
    spec = write(tmp_path / "bad.tsv", "a\tb\nc\td\nno tab here\n")
    message = error_of(spec)
    assert f"{spec}:3:" in message and "tab" in message


def test_empty_file(tmp_path: Path) -> None:
    """An empty file is an error naming the file."""
    spec = write(tmp_path / "empty.tsv", "")
    message = error_of(spec)
    assert spec in message and "empty" in message


def test_blank_only_file_is_empty(tmp_path: Path) -> None:
    """A file of blank lines counts as empty."""
    spec = write(tmp_path / "blank.tsv", "\n  \n\n")
    assert "empty" in error_of(spec)


def test_invalid_utf8(tmp_path: Path) -> None:
    """A non-UTF-8 byte names the line and the byte."""
    spec = write(tmp_path / "latin.tsv", b"ok\tfine\nbad\xff\tx\n")
    message = error_of(spec)
    assert f"{spec}:2:" in message and "UTF-8" in message and "0xff" in message
    spec = write(tmp_path / "mixed.tsv", b"a\tb\r\n\r\nc\td\re\tf\nok\tno\xe9\n")
    assert error_of(spec).startswith(f"{spec}:5: not valid UTF-8 (byte 0xe9 at column 6)")


def test_line_ends_and_numbers(tmp_path: Path) -> None:
    """Lines end at \\n, \\r\\n or \\r, and blank lines still count in the numbering."""
    assert list(read_lines(write(tmp_path / "ends.txt", b"a\r\n\nb\rc\n\nd"))) == [
        (1, "a"), (2, ""), (3, "b"), (4, "c"), (5, ""), (6, "d")]
    assert list(read_lines(write(tmp_path / "empty.txt", b""))) == []


def test_aligned_length_mismatch(tmp_path: Path) -> None:
    """Aligned files of different lengths: both names and both counts."""
    src = write(tmp_path / "src.txt", "a\nb\nc\n")
    tgt = write(tmp_path / "tgt.txt", "x\ny\n")
    message = error_of(f"{src},{tgt}")
    assert src in message and tgt in message and "3" in message and "2" in message


@pytest.mark.parametrize(("name", "content", "line", "problem"), [
    ("e.tsv", "a\tb\n \tc\n", 2, "empty source"),
    ("e.tsv", "a\t\n", 1, "empty target"),
    ("d.jsonl", '{"src": "a", "tgt": "b"}\n{"src": "a", \n', 2, "invalid JSON"),
    ("d.jsonl", '{"src": "a", "tgt": "b"}\n\n{"src": "a"}\n', 3, '"tgt"'),  # blank lines still count
    ("d.jsonl", '{"src": "a", "tgt": 3}\n', 1, "string fields"),
])
def test_bad_line_names_file_and_line(tmp_path: Path, name: str, content: str, line: int, problem: str) -> None:
    """Empty sides, invalid JSON and missing or non-string fields: one message with file:line and the problem."""
    spec = write(tmp_path / name, content)
    message = error_of(spec)
    assert f"{spec}:{line}:" in message and problem in message


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is one DataError, not a traceback."""
    spec = str(tmp_path / "nope.tsv")
    message = error_of(spec)
    assert spec in message and "no such file" in message


def test_missing_aligned_file(tmp_path: Path) -> None:
    """A missing target file of an aligned pair names that file."""
    src = write(tmp_path / "src.txt", "a\n")
    tgt = str(tmp_path / "missing.txt")
    message = error_of(f"{src},{tgt}")
    assert tgt in message and "cannot read" in message


# ---- dev split
def make_pairs(count: int) -> list[Pair]:
    return [Pair(f"s{i}", f"t{i}", f"f:{i + 1}") for i in range(count)]


def test_split_dev_deterministic_and_disjoint() -> None:
    """Same seed, same split; dev and train partition the data; another seed gives another split."""
    pairs = make_pairs(100)
    train, dev = split_dev(pairs, 10, seed=3)
    again_train, again_dev = split_dev(pairs, 10, seed=3)
    assert (train, dev) == (again_train, again_dev)
    assert len(dev) == 10 and len(train) == 90
    assert not {p.src for p in train} & {p.src for p in dev}
    assert sorted(p.src for p in train + dev) == sorted(p.src for p in pairs)
    assert split_dev(pairs, 10, seed=4)[1] != dev


def test_split_dev_too_large() -> None:
    """Holding out everything is an error."""
    with pytest.raises(DataError, match="dev_size=5"):
        split_dev(make_pairs(5), 5, seed=1)


# ---- encoding
def test_encode_pairs_drops_and_counts_long_pairs() -> None:
    """Pairs over the source or target limit (in tokens) are dropped and counted; tgt gets <s> and </s>."""
    pairs = [Pair("ab", "xy"), Pair("abcd", "x"), Pair("a", "xyzw"), Pair("abc", "xyz")]
    tokenizers = (CharTokenizer(), CharTokenizer())
    vocabs = (Vocab.build([list("abcd")]), Vocab.build([list("xyzw")]))
    examples, dropped = encode_pairs(pairs, tokenizers, vocabs, max_lengths=(3, 3))
    assert dropped == 2
    assert [vocabs[0].decode(e.src) for e in examples] == [["a", "b"], ["a", "b", "c"]]
    assert examples[0].tgt[0] == BOS_ID and examples[0].tgt[-1] == EOS_ID
    assert encode_pairs(pairs, tokenizers, vocabs)[1] == 0


def test_unknown_tokens_map_to_unk() -> None:
    """Tokens not in the vocabulary encode as <unk>."""
    vocab = Vocab.build([["the", "cat"], ["the", "dog"]])
    assert vocab.itos[4] == "the"
    assert vocab.encode(["the", "zebra", "cat"]) == [vocab.stoi["the"], UNK_ID, vocab.stoi["cat"]]
    examples, _ = encode_pairs([Pair("the zebra", "the cat")], (WordTokenizer(), WordTokenizer()),
                               (vocab, vocab))
    assert examples[0].src == [vocab.stoi["the"], UNK_ID]


# ---- batching
def padded_positions(examples: list[Example], batches: list[list[int]]) -> int:
    """Pad positions in src and tgt summed over all batches."""
    total = 0
    for indices in batches:
        batch = collate([examples[i] for i in indices])
        total += int((batch.src == PAD_ID).sum()) + int((batch.tgt_out == PAD_ID).sum())
    return total


def as_lists(batches: list[np.ndarray]) -> list[list[int]]:
    return [batch.tolist() for batch in batches]


def test_batch_order_bucketing_reduces_padding_and_covers_all() -> None:
    """Bucketing cuts padding; every index appears once; seeded."""
    lengths = [(i * 7) % 23 + 1 for i in range(200)]
    examples = [Example([5] * n, [BOS_ID] + [6] * n + [EOS_ID]) for n in lengths]
    bucketed = as_lists(batch_order(examples, 16, bucket=True, seed=0))
    plain = as_lists(batch_order(examples, 16, bucket=False, seed=0))
    for batches in (bucketed, plain):
        assert sorted(i for b in batches for i in b) == list(range(200))
        assert all(1 <= len(b) <= 16 for b in batches)
    assert padded_positions(examples, bucketed) < padded_positions(examples, plain) / 3
    assert as_lists(batch_order(examples, 16, bucket=True, seed=0)) == bucketed
    assert as_lists(batch_order(examples, 16, bucket=True, seed=1)) != bucketed


def test_collate_shapes() -> None:
    """collate pads src and shifts tgt into tgt_in / tgt_out."""
    batch = collate([Example([4, 5, 6], [BOS_ID, 7, EOS_ID]), Example([4], [BOS_ID, 7, 8, EOS_ID])])
    assert batch.src.tolist() == [[4, 5, 6], [4, PAD_ID, PAD_ID]]
    assert batch.src_lengths.tolist() == [3, 1]
    assert batch.tgt_in.tolist() == [[BOS_ID, 7, EOS_ID], [BOS_ID, 7, 8]]
    assert batch.tgt_out.tolist() == [[7, EOS_ID, PAD_ID], [7, 8, EOS_ID]]
    assert batch.num_tgt_tokens == 5


def test_pad() -> None:
    """pad pads at the end to the longest (or a given) length."""
    out = pad([[1, 2, 3], [4]])
    assert out.dtype == torch.long and out.tolist() == [[1, 2, 3], [4, PAD_ID, PAD_ID]]
    assert pad([[1], [2, 3]], length=4, value=9).tolist() == [[1, 9, 9, 9], [2, 3, 9, 9]]


def test_token_batches_hold_at_most_that_many_target_positions() -> None:
    """data.batch_tokens: each batch's size x its longest target (tgt_out) fits; every index once; seeded."""
    lengths = [(i * 7) % 23 + 1 for i in range(200)]
    examples = [Example([5] * n, [BOS_ID] + [6] * n + [EOS_ID]) for n in lengths]
    for bucket in (True, False):
        batches = as_lists(batch_order(examples, 16, bucket=bucket, seed=0, batch_tokens=60))
        assert sorted(i for b in batches for i in b) == list(range(200))
        assert all(collate([examples[i] for i in b]).tgt_out.numel() <= 60 for b in batches)
    bucketed = as_lists(batch_order(examples, 16, bucket=True, seed=0, batch_tokens=60))
    assert max(len(b) for b in bucketed) > 16  # short targets: more sentences than batch_size
    assert as_lists(batch_order(examples, 16, bucket=True, seed=0, batch_tokens=60)) == bucketed


def test_token_batches_keep_a_longer_example_alone() -> None:
    assert token_batch_starts([2, 9, 2, 2], batch_tokens=5) == [1, 2]  # batches [0], [1], [2, 3]
    assert token_batch_starts([3, 3, 3], batch_tokens=9) == []


def test_split_batch_into_near_equal_consecutive_parts() -> None:
    assert split_batch([1, 2, 3, 4, 5], 2) == [[1, 2, 3], [4, 5]]
    assert split_batch([1, 2, 3], 3) == [[1], [2], [3]]
    assert split_batch([1], 2) == [[1], []]
