"""Readers for parallel text (TSV/Anki, aligned files, JSONL), and bucketed padded batches of encoded pairs."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from seq2seq.data.examples import Example, TokenPair, encode_pairs, encode_tokens, tokenize_pairs  # noqa: F401 (their home until they moved to data.examples)
from seq2seq.data.lines import Pair, read_lines
from seq2seq.data.vocab import PAD_ID
from seq2seq.errors import DataError

Item = TypeVar("Item")


def as_pair(value: Pair | Sequence[str | Path]) -> Pair:
    """value as a Pair: a Pair as it is, a plain (source, target) tuple or list of strings (a source may be a Path,
    such as a WAV file's) as one; DataError otherwise."""
    if isinstance(value, Pair):
        return value
    if isinstance(value, tuple | list) and len(value) == 2 and isinstance(value[0], str | Path) and \
            isinstance(value[1], str):
        return Pair(str(value[0]), value[1])
    raise DataError(f"a training item must be a (source, target) pair of strings, not {value!r:.80}")


@dataclass
class Batch:
    """Padded tensors of a batch: src (B, S), src_lengths (B,), tgt_in and tgt_out (B, T)."""

    src: Tensor
    src_lengths: Tensor
    tgt_in: Tensor
    tgt_out: Tensor

    @property
    def num_tgt_tokens(self) -> int:
        return int((self.tgt_out != PAD_ID).sum())

    def to(self, device: torch.device) -> Batch:
        return Batch(self.src.to(device), self.src_lengths.to(device), self.tgt_in.to(device),
                     self.tgt_out.to(device))


def read_tsv(path: str | Path) -> list[Pair]:
    """Read `source<TAB>target[<TAB>attribution...]` lines (the Tatoeba/Anki format); blank lines are skipped."""
    return _non_empty(list(tsv_pairs(path)), path)


def tsv_pairs(path: str | Path) -> Iterator[Pair]:
    """The pairs of `read_tsv`, read one line at a time."""
    for number, line in read_lines(path):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) < 2:
            raise DataError(f"{path}:{number}: expected source<TAB>target, found no tab")
        yield _checked_pair(columns[0], columns[1], f"{path}:{number}")


def read_aligned(src_path: str | Path, tgt_path: str | Path) -> list[Pair]:
    """Read two files with one sentence per line, line i of one aligned with line i of the other."""
    return _non_empty(list(aligned_pairs(src_path, tgt_path)), src_path)


def aligned_pairs(src_path: str | Path, tgt_path: str | Path) -> Iterator[Pair]:
    """The pairs of `read_aligned`, read one line of each file at a time; files of different lengths raise DataError
    (after the pairs of the shorter one)."""
    src_lines, tgt_lines = read_lines(src_path), read_lines(tgt_path)
    for src, tgt in zip_longest(src_lines, tgt_lines):
        if src is None or tgt is None:
            number = (src or tgt)[0]
            longer = number + sum(1 for _ in (src_lines if tgt is None else tgt_lines))
            counts = (number - 1, longer) if src is None else (longer, number - 1)
            raise DataError(f"{src_path} has {counts[0]} lines but {tgt_path} has {counts[1]}: aligned files must "
                            "have the same number of lines")
        yield _checked_pair(src[1], tgt[1], f"{src_path}:{src[0]}")


def read_jsonl(path: str | Path) -> list[Pair]:
    """Read one JSON object per line with "src" and "tgt" strings."""
    return _non_empty(list(jsonl_pairs(path)), path)


def jsonl_pairs(path: str | Path) -> Iterator[Pair]:
    """The pairs of `read_jsonl`, read one line at a time."""
    for number, line in read_lines(path):
        if not line.strip():
            continue
        record = json_record(line, f"{path}:{number}")
        if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in ("src", "tgt")):
            raise DataError(f'{path}:{number}: expected an object with string fields "src" and "tgt"')
        yield _checked_pair(record["src"], record["tgt"], f"{path}:{number}")


def json_record(line: str, origin: str) -> Any:
    """The JSON value of one line; invalid JSON (nesting thousands deep too) raises DataError naming origin."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{origin}: invalid JSON ({error.msg})") from None
    except RecursionError:
        raise DataError(f"{origin}: invalid JSON (nested too deeply)") from None


def read_pairs(spec: str) -> list[Pair]:
    """Read pairs from `file.tsv`, `file.jsonl` or `source_file,target_file` (aligned)."""
    return _non_empty(list(stream_pairs(spec)), spec.split(",", 1)[0] if _aligned(spec) else spec)


def stream_pairs(spec: str) -> Iterator[Pair]:
    """The pairs of `read_pairs`, read one line at a time (a corpus larger than memory); none for an empty file."""
    if _aligned(spec):
        return aligned_pairs(*spec.split(",", 1))
    if not Path(spec).is_file():
        raise DataError(f"{spec}: no such file")
    return jsonl_pairs(spec) if spec.endswith(".jsonl") else tsv_pairs(spec)


def _aligned(spec: str) -> bool:
    """Whether spec names two aligned files, `source_file,target_file`."""
    return "," in spec and not Path(spec).exists()


def _checked_pair(src: str, tgt: str, origin: str) -> Pair:
    if not src.strip():
        raise DataError(f"{origin}: empty source")
    if not tgt.strip():
        raise DataError(f"{origin}: empty target")
    return Pair(src.strip(), tgt.strip(), origin)


def _non_empty(pairs: list[Pair], path: str | Path) -> list[Pair]:
    if not pairs:
        raise DataError(f"{path}: no data (the file is empty)")
    return pairs


def split_dev(pairs: list[Item], dev_size: int, seed: int) -> tuple[list[Item], list[Item]]:
    """Deterministically hold out dev_size pairs, or other examples (a seeded shuffle of positions)."""
    if dev_size >= len(pairs):
        raise DataError(f"data.dev_size={dev_size} leaves no training data ({len(pairs)} examples)")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    held = set(order[:dev_size])
    return [p for i, p in enumerate(pairs) if i not in held], [pairs[i] for i in sorted(held)]


def batch_order(examples: Sequence[Example], batch_size: int, bucket: bool, seed: int, batch_tokens: int = 0
                ) -> list[np.ndarray]:
    """Indices of each batch (int64 views of one array: 8 bytes an example, however large the corpus): similar
    lengths together when bucketing, batch order shuffled by seed.

    A batch holds batch_size examples, or with batch_tokens as many as fit that many target positions (padding
    included: examples x the longest target); an example longer than batch_tokens is a batch of its own.
    """
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(examples), generator=generator)
    src_lengths, tgt_lengths = example_lengths(examples)
    if bucket:  # a stable sort of the shuffled order: ties stay shuffled
        keys = tgt_lengths * (int(src_lengths.max()) + 1) + src_lengths
        order = order[torch.sort(keys[order], stable=True).indices]
    if not len(order):
        return []
    if batch_tokens:
        cuts = token_batch_starts((tgt_lengths[order] - 1).tolist(), batch_tokens)
    else:
        cuts = list(range(batch_size, len(order), batch_size))
    batches = np.split(order.numpy(), cuts)
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def example_lengths(examples: Sequence[Example]) -> tuple[Tensor, Tensor]:
    """Each example's source and target length (int64): from the `lengths` array (N, 2) of a sequence that has one
    (the examples of prepared shards, `shards.ShardedExamples`, which it saves reading), else counted."""
    table = getattr(examples, "lengths", None)
    if table is None:
        return torch.tensor([len(e.src) for e in examples]), torch.tensor([len(e.tgt) for e in examples])
    table = torch.as_tensor(table).long()
    return table[:, 0], table[:, 1]


def token_batch_starts(lengths: Sequence[int], batch_tokens: int) -> list[int]:
    """Where to cut a sequence of examples with these lengths into consecutive batches of at most batch_tokens
    positions (size x the longest length in it): the positions that start a new batch, the first one aside."""
    starts: list[int] = []
    start, longest = 0, 0
    for position, length in enumerate(lengths):
        longest = max(longest, length)
        if position > start and (position - start + 1) * longest > batch_tokens:
            starts.append(position)
            start, longest = position, length
    return starts


Indices = TypeVar("Indices", list[int], np.ndarray)


def split_batch(indices: Indices, parts: int) -> list[Indices]:
    """indices cut into `parts` consecutive parts whose sizes differ by at most one (empty when too few)."""
    size, extra = divmod(len(indices), parts)
    bounds = [k * size + min(k, extra) for k in range(parts + 1)]
    return [indices[bounds[k]:bounds[k + 1]] for k in range(parts)]


def collate(examples: Sequence[Example]) -> Batch:
    """Pad a list of examples into a Batch; frames (speech) pad with zeros into src (B, S, F)."""
    sources = [e.src for e in examples]
    src = pad_sequence(sources, batch_first=True) if isinstance(sources[0], Tensor) else pad(sources)
    src_lengths = torch.tensor([len(e.src) for e in examples])
    tgt = pad([e.tgt for e in examples])
    return Batch(src, src_lengths, tgt[:, :-1], tgt[:, 1:])


def pad(sequences: Sequence[Sequence[int]], length: int = 0, value: int = PAD_ID) -> Tensor:
    """Keras-style pad_sequences: (N, max(length, longest)) int64, padded at the end."""
    width = max(length, max(len(s) for s in sequences))
    out = torch.full((len(sequences), width), value, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        out[row, :len(sequence)] = torch.as_tensor(sequence, dtype=torch.long)
    return out
