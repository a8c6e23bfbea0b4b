"""The contract between the exported graphs and their runtime: tensor names, batch axes, the manifest's format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from seq2seq.data.vocab import PAD_ID

FORMAT = "seq2seq-onnx-1"
ENSEMBLE_FORMAT = "seq2seq-onnx-ensemble-1"  # the manifest lists members, each with its graphs in its own folder
MEMBERS = "members"  # an ensemble's member i has its graphs in members/i
MANIFEST, METADATA = "manifest.json", "model.json"
ENCODER, STEP = "encoder.onnx", "step.onnx"  # a language model's encoder graph reads the prompt
CLASSIFIER = "classifier.onnx"  # a classifier's one graph: src, src_lengths -> logits (and pooling weights)
TOKENS, LOGITS, EXTENSION = "tokens", "logits", "extension"
WEIGHTS = "weights"  # a classifier's attention pooling weights (B, S)
NEXT = "next_"  # the step graph's output of state tensor X is named next_X
MEMORY_NAMES = ("outputs", "keys", "mask", "source")  # `decoder.Memory`'s tensors, in this order
STATE_NAMES = ("feed", "attention", "coverage")  # `decoder.DecoderState`'s tensors besides hidden0, hidden1, ...
HIDDEN = "hidden"
TRANSLATOR, GENERATOR, CLASSIFIER_RUNTIME = "translator", "generator", "classifier"
"""The runtimes a manifest's `runtime` names (`seq2seq.onnx.loading.RUNTIMES`): which class reads the export."""

Array = NDArray[Any]


def hidden_names(parts: int) -> list[str]:
    """Names of the recurrent state's parts (L, B, H): hidden0 (h), hidden1 (an LSTM's c)."""
    return [f"{HIDDEN}{index}" for index in range(parts)]


def batch_axis(name: str) -> int | None:
    """The axis of a tensor's batch rows: 1 for recurrent state parts (L, B, H), none for the copy extension."""
    if name == EXTENSION:
        return None
    return 1 if name.startswith(HIDDEN) else 0


@dataclass(frozen=True)
class Arrays:
    """Named arrays of a batch (encoder memory or decoder state): what the search reorders by index_select."""

    values: dict[str, Array]

    def index_select(self, index: Array) -> Self:
        """Rows of the batch in the given order."""
        return type(self)({name: value if batch_axis(name) is None else np.take(value, index, axis=batch_axis(name))
                           for name, value in self.values.items()})

    @property
    def attention(self) -> Array | None:
        """The last step's attention weights (B, S), None for a model without attention."""
        return self.values.get("attention")


def pad(rows: list[list[int]]) -> tuple[Array, Array]:
    """Ids (B, S) padded with <pad> at the end, and the lengths (B,): the graphs' src and src_lengths."""
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    src = np.full((len(rows), int(lengths.max())), PAD_ID, dtype=np.int64)
    for index, row in enumerate(rows):
        src[index, :len(row)] = row
    return src, lengths
