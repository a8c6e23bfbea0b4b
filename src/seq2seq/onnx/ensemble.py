"""An exported ensemble on ONNX Runtime: its members' graphs decode as one, as `models.ensemble.Ensemble` does."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seq2seq.decoding.numpy_arrays import NumpyArrays
from seq2seq.errors import CheckpointError
from seq2seq.onnx.graphs import ENCODER, ENSEMBLE_FORMAT, MANIFEST, STEP, Array
from seq2seq.onnx.model import OnnxModel


@dataclass(frozen=True)
class Parts:
    """Each member's encoder memory or decoder state: what `seq2seq.decoding.search` reorders by index_select."""

    parts: tuple[Any, ...]

    def index_select(self, index: Array) -> Parts:
        """Rows of the batch in the given order, in every member's part."""
        return Parts(tuple(part.index_select(index) for part in self.parts))

    @property
    def attention(self) -> Array | None:
        """The members' last attention weights (B, S), averaged; None unless every member attends."""
        weights = [part.attention for part in self.parts if part.attention is not None]
        return np.mean(weights, axis=0) if len(weights) == len(self.parts) else None


class OnnxEnsemble:
    """Exported models that share their vocabularies, as one `encode / init_state / step` model: its next-token
    log-probabilities are the log of the mean of the members' probabilities."""

    def __init__(self, members: Sequence[OnnxModel]) -> None:
        self.members = tuple(members)

    def encode(self, src: Array, src_lengths: Array) -> Parts:
        return Parts(tuple(member.encode(src, src_lengths) for member in self.members))

    def init_state(self, memory: Parts) -> Parts:
        return Parts(tuple(member.init_state(part) for member, part in zip(self.members, memory.parts, strict=True)))

    def step(self, tokens: Array, state: Parts, memory: Parts) -> tuple[Array, Parts]:
        """Feed one token per row (B,) to every member; returns the mean's log-probabilities (B, V) and the state."""
        outputs = [member.step(tokens, part, member_memory)
                   for member, part, member_memory in zip(self.members, state.parts, memory.parts, strict=True)]
        arrays = NumpyArrays()
        log_probs = np.stack([arrays.log_softmax(logits.astype(np.float32)) for logits, _ in outputs])  # (N, B, V)
        return log_mean_exp(log_probs), Parts(tuple(part for _, part in outputs))


def log_mean_exp(values: Array) -> Array:
    """log of the mean of exp(values) over the first axis (torch.logsumexp - log N), -inf where all are -inf."""
    top = values.max(axis=0)
    shift = np.where(np.isfinite(top), top, 0).astype(values.dtype)
    with np.errstate(divide="ignore"):
        total = np.log(np.exp(values - shift).sum(axis=0))
    return (shift + total - np.float32(math.log(len(values)))).astype(values.dtype)


def open_model(directory: Path, manifest: dict[str, Any], threads: int = 0) -> OnnxModel | OnnxEnsemble:
    """The export's model by its format: its two graphs, or an ensemble's members' (each in the folder its entry
    names, inside the export). An entry missing what it needs is a CheckpointError naming the manifest."""
    if manifest["format"] != ENSEMBLE_FORMAT:
        return OnnxModel(directory, _checked_entry(directory, manifest), threads)
    members = manifest.get("members")
    if not isinstance(members, list) or not members:
        raise CheckpointError(f"{directory / MANIFEST}: an ensemble export without its list of members")
    return OnnxEnsemble([OnnxModel(_member_folder(directory, member), _checked_entry(directory, member), threads)
                         for member in members])


def _member_folder(directory: Path, member: Any) -> Path:
    """The folder of one member: a relative path inside the export."""
    folder = member.get("directory") if isinstance(member, dict) else None
    if not isinstance(folder, str) or Path(folder).is_absolute() or ".." in Path(folder).parts:
        raise CheckpointError(f"{directory / MANIFEST}: a member's directory must be a folder inside the export, "
                              f"not {folder!r}")
    return directory / folder


def _checked_entry(directory: Path, entry: Any) -> dict[str, Any]:
    """entry, once it holds the graphs' hashes and the layout that OnnxModel reads."""
    graphs, layout = (entry.get(key) if isinstance(entry, dict) else None for key in ("graphs", "layout"))
    if not (isinstance(graphs, dict) and {ENCODER, STEP} <= graphs.keys() and isinstance(layout, dict)
            and {"state", "target_vocab_size", "copy"} <= layout.keys()):
        raise CheckpointError(f"{directory / MANIFEST}: damaged manifest (a model entry lacks its graphs' hashes or "
                              "its layout)")
    return entry
