"""OnnxClassifier: labels for texts from an exported classifier, with ONNX Runtime and numpy only (no PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seq2seq.data.metadata import ModelMetadata
from seq2seq.errors import CheckpointError
from seq2seq.onnx.graphs import CLASSIFIER, LOGITS, MANIFEST, WEIGHTS, Array
from seq2seq.onnx.model import Exported, open_session
from seq2seq.tasks.classification import Classifying


class ClassifierGraph:
    """The graph of an exported classifier: src (B, S), src_lengths (B,) -> logits (B, C), and with attention
    pooling its weights (B, S), as `Classifier.scores`."""

    def __init__(self, directory: Path, manifest: dict[str, Any], threads: int = 0) -> None:
        graphs = manifest.get("graphs")
        if not isinstance(graphs, dict) or CLASSIFIER not in graphs:
            raise CheckpointError(f"{directory / MANIFEST}: damaged manifest (no hash of {CLASSIFIER})")
        self.session = open_session(directory / CLASSIFIER, graphs[CLASSIFIER], threads)
        self.attends = WEIGHTS in [node.name for node in self.session.get_outputs()]

    def scores(self, src: Array, src_lengths: Array) -> tuple[Array, Array | None]:
        """Logits (B, C) of the texts in src (int64 ids padded with <pad>) of lengths (B,), and the attention
        pooling's weights (B, S) (else None)."""
        outputs = self.session.run([LOGITS, WEIGHTS] if self.attends else [LOGITS],
                                   {"src": src, "src_lengths": src_lengths})
        return outputs[0], outputs[1] if self.attends else None


@dataclass
class OnnxClassifier(Exported, Classifying):
    """An exported classifier with its tokenizer and its text and label vocabularies; `TextClassifier`'s methods
    without torch (in fp32 the same labels and, within the export's tolerance, the same probabilities)."""

    model: ClassifierGraph
    metadata: ModelMetadata
    manifest: dict[str, Any]

    def attends(self) -> bool:
        """Whether `classify_detailed` gives the attention pooling's weights, as `TextClassifier.attends`."""
        return bool(self.manifest["layout"]["attention"])
