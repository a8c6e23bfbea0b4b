"""Fuzzed input: every reader and tokenizer, given random bytes, BOMs, CRLF, NUL, lone surrogates, huge lines and
empty columns, returns clean data or raises a DataError naming the file (and the line, where it names one).

`bench/faults.py` runs the same properties with many more examples (FUZZ_EXAMPLES per property; the environment
variable SEQ2SEQ_FUZZ_EXAMPLES sets it).
"""

from __future__ import annotations

import codecs
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seq2seq.data.conversations import conversation_pairs, read_chatterbot
from seq2seq.data.labels import read_labelled
from seq2seq.data.pairs import Pair, read_aligned, read_jsonl, read_tsv
from seq2seq.data.text import read_entries
from seq2seq.data.tokenizers import CharTokenizer, SubwordTokenizer, Tokenizer, WordTokenizer
from seq2seq.errors import DataError

FUZZ_EXAMPLES = int(os.environ.get("SEQ2SEQ_FUZZ_EXAMPLES", "40"))
INPUTS: Counter[str] = Counter()  # inputs each property was given (bench/faults.py reports the total)
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

PIECES = ["\t", "\t\t", "\n", "\r\n", "\r", "\x00", "\ufeff", "\ud800", "\udfff", " ", '"', "{", "}", "[", "]", ":",
          ",", "- ", "-\n", "#", "%", "%\n", "é", "\u2028", "\x85", "\x0b\x0c", "null", "~", "&a ", "*a", "!!binary ",
          "conversations:\n", "- - ", '{"src": "a", "tgt": "b"}\n', '{"text": "t", "label": "l"}\n', "[" * 3000,
          "\\", "\\u", '"\\ud800"', "<unk>", "</s>"]
TEXT = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(PIECES)), max_size=40).map("".join)
CELL = st.one_of(st.just(""), st.just(" "), st.text(max_size=8), st.sampled_from(PIECES))
TSV = st.lists(st.lists(CELL, max_size=4).map("\t".join), max_size=8).map("\n".join)
VALUE = st.one_of(st.none(), st.integers(), st.text(max_size=8), st.lists(st.text(max_size=4), max_size=3))
JSONL = st.lists(st.dictionaries(st.sampled_from(["src", "tgt", "text", "label", "x"]), VALUE, max_size=4)
                 .map(json.dumps), max_size=6).map("\n".join)
YAML_TREE = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
                         lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                 st.dictionaries(st.sampled_from(["conversations", "categories", "x"]),
                                                                 inner, max_size=3)), max_leaves=12)
YAML = st.one_of(YAML_TREE, st.fixed_dictionaries({"conversations": YAML_TREE})).map(yaml.safe_dump)


def encoded(text: str) -> bytes:
    """UTF-8, lone surrogates kept as the invalid bytes a broken encoder writes."""
    return text.encode("utf-8", "surrogatepass")


def contents(structured: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """A file's bytes: structured text, noise text, with a BOM, random bytes, or a huge line."""
    text = st.one_of(structured, TEXT, st.tuples(structured, TEXT).map("".join))
    return st.one_of(text.map(encoded), text.map(lambda t: codecs.BOM_UTF8 + encoded(t)), st.binary(max_size=200),
                     st.tuples(st.integers(1, 300_000), text).map(lambda p: b"x" * p[0] + b"\t" + encoded(p[1])))


def outcome(read: Callable[[], Any], files: dict[Path, bytes]) -> Any:
    """read()'s result, or None after a DataError that names one of the files (and a line of it, if any)."""
    try:
        return read()
    except DataError as error:
        check_names_file_and_line(str(error), files)
        return None


def check_names_file_and_line(message: str, files: dict[Path, bytes]) -> None:
    assert "\n" not in message, message
    path = next((path for path in files if message.startswith(str(path))), None)
    assert path is not None, f"the error names no input file: {message}"
    line = re.match(rf"{re.escape(str(path))}:(\d+):", message)
    if line:
        assert 1 <= int(line.group(1)) <= len(files[path].splitlines()) + 1, message


def with_files(contents_by_name: dict[str, bytes], check: Callable[[dict[Path, bytes]], None]) -> None:
    """Write the files (one generated input) into a fresh folder and run check on their paths."""
    INPUTS["inputs"] += 1
    with tempfile.TemporaryDirectory() as folder:
        files = {Path(folder) / name: data for name, data in contents_by_name.items()}
        for path, data in files.items():
            path.write_bytes(data)
        check(files)


def check_pairs(pairs: Sequence[Pair] | None) -> None:
    for pair in pairs or []:
        assert isinstance(pair.src, str) and pair.src.strip() and isinstance(pair.tgt, str) and pair.tgt.strip()


def read_one(reader: Callable[[Path], Any]) -> Callable[[dict[Path, bytes]], Any]:
    return lambda files: outcome(lambda: reader(next(iter(files))), files)


@FUZZ
@given(contents(TSV))
def test_tsv(data: bytes) -> None:
    with_files({"pairs.tsv": data}, lambda files: check_pairs(read_one(read_tsv)(files)))


@FUZZ
@given(contents(JSONL))
def test_jsonl(data: bytes) -> None:
    with_files({"pairs.jsonl": data}, lambda files: check_pairs(read_one(read_jsonl)(files)))


@FUZZ
@given(contents(TEXT), contents(TEXT))
def test_aligned_files(src: bytes, tgt: bytes) -> None:
    def check(files: dict[Path, bytes]) -> None:
        check_pairs(outcome(lambda: read_aligned(*files), files))

    with_files({"src.txt": src, "tgt.txt": tgt}, check)


@FUZZ
@given(contents(st.one_of(TSV, JSONL)), st.sampled_from(["labels.tsv", "labels.jsonl"]))
def test_labelled_texts(data: bytes, name: str) -> None:
    with_files({name: data}, lambda files: check_pairs(read_one(read_labelled)(files)))


@FUZZ
@given(contents(YAML))
def test_chatterbot_yaml(data: bytes) -> None:
    def check(files: dict[Path, bytes]) -> None:
        conversations = read_one(read_chatterbot)(files)
        check_pairs(conversation_pairs(conversations or [], history=1))

    with_files({"corpus.yml": data}, check)


@FUZZ
@given(contents(TEXT), st.sampled_from(["file", "line", "delimiter"]))
def test_plain_text(data: bytes, entries: str) -> None:
    def check(files: dict[Path, bytes]) -> None:
        found = read_one(lambda path: read_entries(path, entries))(files)
        assert all(isinstance(entry, str) and entry.strip() for entry in found or [])

    with_files({"text.txt": data}, check)


@pytest.fixture(scope="module")
def tokenizers() -> list[Tokenizer]:
    corpus = ["the cat sat on the mat", "éléphant ou chat ?", "x" * 50, "a b c d e f g"] * 5
    return [CharTokenizer(), CharTokenizer(lowercase=True), WordTokenizer(), WordTokenizer(split_punctuation=False),
            WordTokenizer(language="fr"), SubwordTokenizer.train(corpus, 40)]


@FUZZ
@given(st.one_of(TEXT, st.text()))
def test_tokenizers(tokenizers: list[Tokenizer], text: str) -> None:
    INPUTS["inputs"] += 1
    for tokenizer in tokenizers:
        tokens = outcome(partial(tokenizer.tokenize, text), {Path("<text>"): encoded(text)})
        if tokens is not None:
            assert all(isinstance(token, str) for token in tokens)
            assert isinstance(tokenizer.detokenize(tokens), str)


@pytest.mark.parametrize(("name", "data", "reader", "message"), [
    ("deep.jsonl", b"[" * 100_000, read_jsonl, "deep.jsonl:1: invalid JSON (nested too deeply)"),
    ("deep.jsonl", b"[" * 100_000, read_labelled, "deep.jsonl:1: invalid JSON (nested too deeply)"),
    ("deep.yml", b"conversations:\n- " + b"[" * 100_000, read_chatterbot, "deep.yml: not valid YAML (nested too "
                                                                           "deeply)"),
    ("nul.yml", b"conversations:\n- - a\x00", read_chatterbot, "nul.yml:2: not valid YAML (unacceptable character "
                                                               "#x0000: special characters are not allowed)"),
])
def test_what_fuzzing_found(tmp_path: Path, name: str, data: bytes, reader: Callable[[Path], Any],
                            message: str) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DataError) as caught:
        reader(tmp_path / name)
    assert str(caught.value) == f"{tmp_path}/{message}"


def test_a_lone_surrogate_is_one_unknown_character_for_subwords(tokenizers: list[Tokenizer]) -> None:
    assert tokenizers[-1].tokenize("a\ud800") == tokenizers[-1].tokenize("a\ufffd")
