"""Prepared shards: training pairs as token ids in flat binary files, read back through memory maps.

A prepared directory (`seq2seq prepare`) holds, for each shard NNNNN, the files NNNNN.src and NNNNN.tgt (the ids of
its sources and of its targets one after the other: uint16 where every id fits, else int32) and NNNNN.offsets
((pairs + 1, 2) int64: where each pair's source and target start in them); lengths.int32 ((pairs, 2): every pair's
source and target length, for bucketing without reading the ids); and manifest.json: the format, the counts, each
file's size and SHA-256, and what the writer adds (settings, tokenizers, vocabularies).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import operator
from collections import OrderedDict
from collections.abc import Sequence
from itertools import accumulate, chain
from pathlib import Path
from typing import Any

import numpy as np

from seq2seq.data.examples import Example
from seq2seq.errors import DataError
from seq2seq.utils.files import write_text_atomically

FORMAT = "seq2seq-shards-1"
MANIFEST = "manifest.json"
LENGTHS = "lengths.int32"
SHARD_FILES = (".src", ".tgt", ".offsets")
WINDOW_BYTES = 256 * 1024**2  # ShardedExamples maps as many shards at once as fit this many bytes of files
MOST_MAPPED = 64  # and never more shards than this (each mapping holds a file descriptor)
READ_BYTES = 1 << 24  # a file is checked in chunks of this many bytes


def id_type(limit: int) -> str:
    """The type of the ids files when every id lies below limit: uint16 where it fits, else int32."""
    return "uint16" if limit <= 1 << 16 else "int32"


def shard_name(index: int) -> str:
    return f"{index:05d}"


def write_shard(folder: Path, name: str, examples: Sequence[Example], dtype: str
                ) -> tuple[dict[str, dict[str, Any]], np.ndarray]:
    """Write the files of shard `name` holding examples into folder; returns their manifest entries (`write_file`)
    and the examples' source and target lengths (pairs, 2)."""
    lengths = np.array([(len(e.src), len(e.tgt)) for e in examples], dtype=np.int32).reshape(-1, 2)
    offsets = np.zeros((len(examples) + 1, 2), dtype=np.int64)
    np.cumsum(lengths, axis=0, dtype=np.int64, out=offsets[1:])
    src, tgt = (np.fromiter(chain.from_iterable(e[side] for e in examples), dtype, count=int(offsets[-1, side]))
                for side in (0, 1))
    arrays = {f"{name}.src": src, f"{name}.tgt": tgt, f"{name}.offsets": offsets}
    return {file: write_file(folder / file, array.tobytes()) for file, array in arrays.items()}, lengths


def write_file(path: Path, data: bytes) -> dict[str, Any]:
    """Write data to path; returns its manifest entry: size in bytes and SHA-256."""
    path.write_bytes(data)
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    write_text_atomically(folder / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1) + "\n")


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a prepared directory; DataError naming it when it is missing, unreadable, of another format,
    or its counts do not add up."""
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: cannot read the manifest of a prepared directory ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{path}: not a manifest of format {FORMAT}; prepare the directory again")
    try:
        counted = sum(int(shard["pairs"]) for shard in manifest["shards"])
        sizes = {name: int(entry["bytes"]) for name, entry in manifest["files"].items()}
        listed = all(shard["name"] + suffix in sizes for shard in manifest["shards"] for suffix in SHARD_FILES)
        np.dtype(manifest["dtype"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise DataError(f"{path}: malformed manifest ({type(error).__name__}: {error})") from None
    if not listed or counted != manifest.get("pairs") or sizes.get(LENGTHS) != 8 * counted:
        raise DataError(f"{path}: malformed manifest (its shards, files and pairs do not add up)")
    return manifest


def check_files(folder: str | Path, manifest: dict[str, Any], limits: tuple[int, int]) -> None:
    """Raise DataError naming the first file of the manifest that is missing, whose size or SHA-256 is not the
    manifest's (truncated or corrupted), or (source and target ids) that holds an id at or above its side's limit."""
    for name, entry in manifest["files"].items():
        side = {".src": 0, ".tgt": 1}.get(Path(name).suffix)
        _check_file(Path(folder) / name, entry, None if side is None else (manifest["dtype"], limits[side]))


def _check_file(path: Path, entry: dict[str, Any], ids: tuple[str, int] | None) -> None:
    """`check_files` for one file; ids: the type of its ids and the limit they lie below, for an ids file."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror}); prepare the directory again") from None
    if size != entry["bytes"]:
        raise DataError(f"{path}: {size} bytes where the manifest says {entry['bytes']}: truncated or corrupted; "
                        "prepare the directory again")
    digest, largest = hashlib.sha256(), -1
    with open(path, "rb") as handle:
        while chunk := handle.read(READ_BYTES):
            digest.update(chunk)
            if ids is not None:
                largest = max(largest, int(np.frombuffer(chunk, ids[0]).max()))
    if digest.hexdigest() != entry.get("sha256"):
        raise DataError(f"{path}: its SHA-256 is not the manifest's: corrupted; prepare the directory again")
    if ids is not None and largest >= ids[1]:
        raise DataError(f"{path}: holds token id {largest}, beyond the vocabulary (ids below {ids[1]}); prepare the "
                        "directory again")


class ShardedExamples(Sequence[Example]):
    """The examples of a prepared directory, read on demand through memory maps (numpy.memmap) of its shards.

    `lengths` (pairs, 2) holds every example's source and target length (`data.example_lengths` buckets by them).
    Only a window of shards is mapped at once: mapping another one unmaps the least recently used, so that the memory
    the examples take is bounded by the window (WINDOW_BYTES), whatever the size of the corpus.
    """

    def __init__(self, folder: str | Path, manifest: dict[str, Any], window_bytes: int = WINDOW_BYTES) -> None:
        self.folder = Path(folder)
        self.lengths = np.fromfile(self.folder / LENGTHS, dtype=np.int32).reshape(-1, 2)
        shards = manifest["shards"]
        self._names = [shard["name"] for shard in shards]
        self._starts = list(accumulate((shard["pairs"] for shard in shards), initial=0))
        self._dtype = np.dtype(manifest["dtype"])
        largest = max((sum(manifest["files"][name + suffix]["bytes"] for suffix in SHARD_FILES)
                       for name in self._names), default=1)
        self.window = max(1, min(MOST_MAPPED, window_bytes // largest))
        self._mapped: OrderedDict[int, _MappedShard] = OrderedDict()

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, index: int) -> Example:  # type: ignore[override]
        index = operator.index(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"example {index} of {len(self)}")
        index %= len(self)
        shard = bisect.bisect_right(self._starts, index) - 1
        return self._shard(shard).example(index - self._starts[shard])

    def _shard(self, number: int) -> _MappedShard:
        """Shard `number`, mapped; beyond the window the least recently used one is unmapped."""
        mapped = self._mapped.get(number)
        if mapped is None:
            mapped = self._mapped[number] = _MappedShard(self.folder, self._names[number], self._dtype)
            if len(self._mapped) > self.window:
                self._mapped.popitem(last=False)
        self._mapped.move_to_end(number)
        return mapped


class _MappedShard:
    """One shard's ids and offsets, mapped read-only (pages are read as they are touched); unmapped when it goes."""

    def __init__(self, folder: Path, name: str, dtype: np.dtype) -> None:
        self.src = _mapped(folder / f"{name}.src", dtype)
        self.tgt = _mapped(folder / f"{name}.tgt", dtype)
        self.offsets = _mapped(folder / f"{name}.offsets", np.int64).reshape(-1, 2)

    def example(self, index: int) -> Example:
        (src_start, tgt_start), (src_end, tgt_end) = self.offsets[index:index + 2].tolist()
        return Example(self.src[src_start:src_end].tolist(), self.tgt[tgt_start:tgt_end].tolist())


def _mapped(path: Path, dtype: Any) -> np.ndarray:
    """The file as a read-only array over a memory map (a plain ndarray view: slicing it costs less than a
    memmap's)."""
    return np.memmap(path, dtype=dtype, mode="r").view(np.ndarray)
