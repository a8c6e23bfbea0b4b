"""Corpora prepared once for training (`seq2seq prepare`), and training's inputs read back from them.

Preparing reads the training pairs in chunks of shard_pairs (files line by line: a corpus larger than memory passes
through). A first pass tokenizes each chunk in a worker process, counts its tokens and keeps them in a temporary
file; the summed counts make the vocabularies as training makes them (`preparation.vocabularies`); a second pass
encodes each chunk's tokens (`preparation.encode_training_tokens`) into a shard (`shards`). The directory appears
complete at the end, or not at all (`files.atomic_directory`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import logging
import pickle
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from seq2seq.config import Config, TokenizerConfig, set_value, source_truncation, validate
from seq2seq.data.checks import check_length_filtering, check_split
from seq2seq.data.datasets import is_prepared, load_pairs, pair_stream
from seq2seq.data.examples import tokenize_pairs
from seq2seq.data.metadata import ModelMetadata
from seq2seq.data.pairs import Pair, read_jsonl, split_dev
from seq2seq.data.preparation import (
    Prepared,
    encode_dev_pairs,
    encode_training_tokens,
    length_limits,
    target_statistics,
    token_counts,
    vocabularies,
)
from seq2seq.data.shards import (
    FORMAT,
    LENGTHS,
    MANIFEST,
    ShardedExamples,
    check_files,
    id_type,
    read_manifest,
    shard_name,
    write_file,
    write_manifest,
    write_shard,
)
from seq2seq.data.tokenizers import Tokenizer, build_tokenizer, tokenizer_from_dict
from seq2seq.data.vocab import Vocab
from seq2seq.errors import ConfigError, DataError
from seq2seq.utils.files import atomic_directory, remove_temporaries

logger = logging.getLogger(__name__)

SHARD_PAIRS = 200_000
DEV_FILE = "dev.jsonl"
PREPARED_KEYS = ("task", *(f"data.{side}.{field.name}" for side in ("src", "tgt")
                           for field in dataclasses.fields(TokenizerConfig)),
                 "data.max_src_length", "data.max_tgt_length", "data.truncate_src", "data.dev_size", "model.copy",
                 "model.share_embeddings")
"""The settings a prepared directory fixes: training takes them from it (`Corpus.training_config`)."""

Result = TypeVar("Result")
Counts = tuple[Counter[str], Counter[str]]


def prepare_corpus(config: Config, train: str, dev: str | None, out_dir: str | Path, workers: int = 1,
                   shard_pairs: int = SHARD_PAIRS) -> dict[str, Any]:
    """Prepare the pairs of train (a data spec, as `train --train` takes it) into the directory out_dir, with dev's
    pairs (or, without dev, data.dev_size training pairs held out as `api.train` holds them out); returns the
    manifest. workers: processes that tokenize and encode (1: this one). A prepared out_dir is replaced."""
    validate(config)
    if shard_pairs < 1:
        raise ConfigError(f"shards must hold at least 1 pair, not {shard_pairs}")
    out = Path(out_dir)
    if out.exists() and not is_prepared(str(out)) and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out}: exists and is not a prepared directory; choose another --out")
    held = _held_out(config, train, dev)
    dev_pairs = load_pairs(dev) if dev else _held_pairs(train, held)
    tokenizers = (build_tokenizer(config.data.src, (pair.src for pair in _kept(train, held))),
                  build_tokenizer(config.data.tgt, (pair.tgt for pair in _kept(train, held))))
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_temporaries(out.parent, out.name)
    with atomic_directory(out, replace=True) as folder, _pool(workers) as pool:
        manifest = _Preparation(config, folder, pool, workers, tokenizers).run(_kept(train, held), shard_pairs,
                                                                                dev_pairs)
        manifest["sources"] = {"train": train, "dev": dev}
        write_manifest(folder, manifest)
    logger.info("prepared %d training pairs (%d dropped for their length) in %d shards, %d dev pairs: %s",
                manifest["pairs"], manifest["dropped"], len(manifest["shards"]), len(dev_pairs), out)
    return manifest


def _held_out(config: Config, train: str, dev: str | None) -> set[int]:
    """Positions of the training pairs that data.dev_size holds out as dev pairs when there is no dev data."""
    if dev or not config.data.dev_size:
        return set()
    count = sum(1 for _ in pair_stream(train))
    return set(split_dev(list(range(count)), config.data.dev_size, config.train.seed)[1])


def _held_pairs(train: str, held: set[int]) -> list[Pair]:
    """The training pairs held out as dev pairs."""
    return [pair for position, pair in enumerate(pair_stream(train)) if position in held] if held else []


def _kept(train: str, held: set[int]) -> Iterator[Pair]:
    """The training pairs, read anew, but those held out."""
    return (pair for position, pair in enumerate(pair_stream(train)) if position not in held)


@dataclass
class _Preparation:
    """One run of `prepare_corpus`: its settings, the folder it fills and its worker processes (None: this one)."""

    config: Config
    folder: Path
    pool: Executor | None
    workers: int
    tokenizers: tuple[Tokenizer, Tokenizer]

    def run(self, pairs: Iterable[Pair], shard_pairs: int, dev_pairs: list[Pair]) -> dict[str, Any]:
        """Tokenize, build the vocabularies, encode into shards; the manifest (without its sources)."""
        counts, token_lengths = self.tokenize(pairs, shard_pairs)
        if not token_lengths:
            raise DataError("no training pairs")
        check_split(sum(map(len, token_lengths)), len(dev_pairs))
        vocabs = vocabularies(self.config, counts)
        longest, cut = int(max(part[:, 0].max() for part in token_lengths)), source_truncation(self.config)
        dtype = id_type(max(id_limits(vocabs, self.config.model.copy, min(longest, cut) if cut else longest)))
        shards, files, lengths, dropped = self.encode(vocabs, dtype, len(token_lengths))
        check_length_filtering(_TokenLengths(np.concatenate(token_lengths)),  # type: ignore[arg-type]
                               dropped, length_limits(self.config), self.config.data.truncate_src)
        files[LENGTHS] = write_file(self.folder / LENGTHS, lengths.tobytes())
        if dev_pairs:
            files[DEV_FILE] = write_file(self.folder / DEV_FILE, "".join(
                json.dumps({"src": p.src, "tgt": p.tgt}, ensure_ascii=False) + "\n" for p in dev_pairs).encode())
        metadata = ModelMetadata(self.config, self.tokenizers, vocabs, target_statistics((lengths[:, 1] - 2).tolist()))
        return {"format": FORMAT, "pairs": len(lengths), "dropped": dropped, "dtype": dtype,
                "longest_source": int(lengths[:, 0].max()), "shards": shards, "files": files,
                "dev": DEV_FILE if dev_pairs else None, "metadata": metadata.to_dict()}

    def tokenize(self, pairs: Iterable[Pair], shard_pairs: int) -> tuple[Counts, list[np.ndarray]]:
        """First pass: each chunk of pairs tokenized by a worker, its tokens kept in a temporary file; the tokens'
        counts and, for each chunk, its pairs' numbers of source and target tokens (pairs, 2)."""
        dicts = (self.tokenizers[0].to_dict(), self.tokenizers[1].to_dict())
        tasks = ((self.folder, index, chunk, dicts) for index, chunk in enumerate(_chunks(pairs, shard_pairs)))
        counts: Counts = (Counter(), Counter())
        lengths = []
        with tqdm(desc="tokenize", unit="pair", unit_scale=True, dynamic_ncols=True, disable=None) as progress:
            for (sources, targets), part in in_order(_tokenize_chunk, tasks, self.pool, self.workers + 1):
                counts[0].update(sources)
                counts[1].update(targets)
                lengths.append(part)
                progress.update(len(part))
        return counts, lengths

    def encode(self, vocabs: tuple[Vocab, Vocab], dtype: str, chunks: int
               ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], np.ndarray, int]:
        """Second pass: each chunk's tokens encoded by a worker into a shard (none where every pair was dropped);
        the shards' manifest entries, their files', the examples' lengths, and the pairs dropped for their length."""
        tasks = ((self.folder, index, self.config, vocabs, dtype) for index in range(chunks))
        shards, files, lengths, dropped = [], {}, [], 0
        with tqdm(desc="encode", unit="chunk", total=chunks, dynamic_ncols=True, disable=None) as progress:
            for index, (entries, part, part_dropped) in enumerate(in_order(_encode_chunk, tasks, self.pool,
                                                                           self.workers + 1)):
                if len(part):
                    shards.append({"name": shard_name(index), "pairs": len(part)})
                files.update(entries)
                lengths.append(part)
                dropped += part_dropped
                progress.update()
        return shards, files, np.concatenate(lengths), dropped


def _tokenize_chunk(folder: Path, index: int, pairs: list[Pair], tokenizers: tuple[dict[str, Any], dict[str, Any]]
                    ) -> tuple[Counts, np.ndarray]:
    """First pass, in a worker: tokenize pairs and keep their tokens in folder; their counts and lengths."""
    token_pairs = tokenize_pairs(pairs, (tokenizer_from_dict(tokenizers[0]), tokenizer_from_dict(tokenizers[1])))
    with open(_tokens_path(folder, index), "wb") as handle:
        pickle.dump(token_pairs, handle, protocol=pickle.HIGHEST_PROTOCOL)
    lengths = np.array([(len(src), len(tgt)) for src, tgt in token_pairs], dtype=np.int32).reshape(-1, 2)
    return token_counts(token_pairs), lengths


def _encode_chunk(folder: Path, index: int, config: Config, vocabs: tuple[Vocab, Vocab], dtype: str
                  ) -> tuple[dict[str, dict[str, Any]], np.ndarray, int]:
    """Second pass, in a worker: encode the tokens the first pass kept into shard `index`; its files' manifest
    entries, its examples' lengths and the number of pairs dropped for their length."""
    path = _tokens_path(folder, index)
    with open(path, "rb") as handle:
        token_pairs = pickle.load(handle)  # written by _tokenize_chunk, in this preparation's own folder
    path.unlink()
    examples, dropped = encode_training_tokens(config, token_pairs, vocabs)
    if not examples:
        return {}, np.zeros((0, 2), dtype=np.int32), dropped
    files, lengths = write_shard(folder, shard_name(index), examples, dtype)
    return files, lengths, dropped


def _tokens_path(folder: Path, index: int) -> Path:
    return folder / f".tokens-{shard_name(index)}.pickle"


class _TokenLengths(Sequence[tuple[range, range]]):
    """Token pairs as `checks.check_length_filtering` reads them, by their lengths only: pair i is (range(number of
    source tokens), range(number of target tokens))."""

    def __init__(self, lengths: np.ndarray) -> None:
        self.lengths = lengths

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: int) -> tuple[range, range]:  # type: ignore[override]
        src, tgt = self.lengths[index].tolist()
        return range(src), range(tgt)


def id_limits(vocabs: Sequence[Vocab], copy: bool, longest_source: int) -> tuple[int, int]:
    """The source and target ids lie below these: the vocabularies' sizes, plus with copy the extension of the longest
    source (`Vocab.encode_extended`)."""
    extension = longest_source if copy else 0
    return len(vocabs[0]) + extension, len(vocabs[1]) + extension


def _chunks(items: Iterable[Pair], size: int) -> Iterator[list[Pair]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def in_order(function: Callable[..., Result], tasks: Iterable[tuple[Any, ...]], pool: Executor | None, ahead: int
             ) -> Iterator[Result]:
    """function(*task) of each task, in the tasks' order: here without a pool, else in the pool's processes with at
    most `ahead` tasks submitted and not yet collected (so that only their inputs are held in memory)."""
    if pool is None:
        yield from (function(*task) for task in tasks)
        return
    pending: deque[Future[Result]] = deque()
    for task in tasks:
        pending.append(pool.submit(function, *task))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


@contextmanager
def _pool(workers: int) -> Iterator[Executor | None]:
    """Worker processes; none for one worker (the work runs in this process). Work not started is cancelled on the
    way out."""
    if workers <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(workers)
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


@dataclass(frozen=True)
class Corpus:
    """A prepared directory: its manifest and the model metadata (settings, tokenizers, vocabularies) it holds."""

    folder: Path
    manifest: dict[str, Any]
    metadata: ModelMetadata

    def training_config(self, config: Config) -> Config:
        """config with the directory's settings of preparation (PREPARED_KEYS): one that config leaves at its default
        is taken from the directory (with a notice where they differ); one set to another value is a ConfigError."""
        merged, default = copy.deepcopy(config), Config()
        for key in PREPARED_KEYS:
            given, prepared = _setting(config, key), _setting(self.metadata.config, key)
            if given == prepared:
                continue
            if given != _setting(default, key):
                raise ConfigError(f"{key}={given!r}, but {self.folder} was prepared with {prepared!r}; leave the "
                                  "setting out or prepare the data again")
            logger.info("%s=%r, as %s was prepared", key, prepared, self.folder)
            set_value(merged, key, prepared, str(self.folder / MANIFEST))
        return merged

    def dev_pairs(self) -> list[Pair]:
        """The dev pairs prepared with the training pairs (none if there are none)."""
        name = self.manifest.get("dev")
        return read_jsonl(self.folder / name) if name else []

    def prepared(self, config: Config, dev_pairs: Sequence[Pair], saved: ModelMetadata | None = None) -> Prepared:
        """Training's inputs (config from `training_config`): the shards' examples, once every file is checked against
        the manifest, and dev_pairs encoded with the directory's tokenizers and vocabularies, which a resumed run
        (saved) must have been trained with."""
        tokenizers = (self.metadata.tokenizers[0], self.metadata.tokenizers[1])
        vocabs = (self.metadata.vocabs[0], self.metadata.vocabs[1])
        if saved is not None and _description(saved) != _description(self.metadata):
            raise DataError(f"{self.folder}: prepared with other tokenizers or vocabularies than the run being resumed")
        check_files(self.folder, self.manifest, id_limits(vocabs, config.model.copy,
                                                          int(self.manifest.get("longest_source", 0))))
        examples = ShardedExamples(self.folder, self.manifest)
        logger.info("%s: %d training pairs in %d shards, vocabulary of %d source / %d target tokens", self.folder,
                    len(examples), len(self.manifest["shards"]), len(vocabs[0]), len(vocabs[1]))
        return Prepared(dataclasses.replace(self.metadata, config=config), examples,
                        encode_dev_pairs(config, dev_pairs, tokenizers, vocabs))


def open_corpus(folder: str | Path) -> Corpus:
    """The prepared directory folder (its manifest read, its files not yet checked: `Corpus.prepared` does)."""
    manifest = read_manifest(folder)
    origin = str(Path(folder) / MANIFEST)
    if not isinstance(manifest.get("metadata"), dict):
        raise DataError(f"{origin}: malformed manifest (no metadata)")
    return Corpus(Path(folder), manifest, ModelMetadata.from_dict(manifest["metadata"], origin))


def _setting(config: Config, key: str) -> Any:
    return functools.reduce(getattr, key.split("."), config)


def _description(metadata: ModelMetadata) -> list[dict[str, Any]]:
    return [part.to_dict() for part in (*metadata.tokenizers, *metadata.vocabs)]
