"""The contract between the exported graphs and their runtime: tensor names, batch axes, the manifest's format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from seq2seq.models.state import LAYERS, ROWS, SOURCE_ROWS, Axes

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
CTC = "ctc_log_probs"  # a speech model's CTC head's log-probabilities (B, S', V), an output of its encoder graph
FRAMES = "frames"  # the time axis of a speech model's input (B, frames, n_mels), before subsampling
TRANSLATOR, GENERATOR, CLASSIFIER_RUNTIME, TRANSCRIBER = "translator", "generator", "classifier", "transcriber"
"""The runtimes a manifest's `runtime` names (`seq2seq.onnx.loading.RUNTIMES`): which class reads the export."""

Array = NDArray[Any]


def state_axes(layout: dict[str, Any]) -> dict[str, Axes]:
    """The axes of each state tensor of a manifest's layout, as the state declared them (`Axes.to_dict`); an export
    written before layouts recorded them named them by the RNN decoders' tensors: hidden0, hidden1 (L, B, H),
    attention and coverage (B, S), any other (B, ...)."""
    if "state_axes" in layout:
        return {name: Axes.from_dict(layout["state_axes"][name]) for name in layout["state"]}
    legacy = {"attention": SOURCE_ROWS, "coverage": SOURCE_ROWS}
    return {name: LAYERS if name.startswith("hidden") else legacy.get(name, ROWS) for name in layout["state"]}


@dataclass(frozen=True)
class Arrays:
    """Named arrays of the encoder memory, rows first (a copying model's extension has none): what the search
    reorders by index_select."""

    values: dict[str, Array]

    def index_select(self, index: Array) -> Self:
        """Rows of the batch in the given order."""
        return type(self)({name: value if name == EXTENSION else np.take(value, index, axis=0)
                           for name, value in self.values.items()})


