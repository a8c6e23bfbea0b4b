"""OnnxClassifier: labels for texts from an exported classifier, with ONNX Runtime and numpy only (no PyTorch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seq2seq.data.batching import length_batches
from seq2seq.data.metadata import ModelMetadata
from seq2seq.decoding.numpy_arrays import NumpyArrays
from seq2seq.errors import CheckpointError
from seq2seq.onnx.graphs import CLASSIFIER, LOGITS, MANIFEST, WEIGHTS, Array, pad
from seq2seq.onnx.model import Exported, open_session
from seq2seq.tasks import classification
from seq2seq.tasks.classification import BATCH_SIZE, Classification, Classifying


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

    def classify_detailed(self, texts: Sequence[str], top_k: int = 1, batch_size: int = BATCH_SIZE
                          ) -> list[Classification]:
        """For each text, its top_k labels with probabilities, its tokens and the attention pooling's weights (a
        numpy array), as `TextClassifier.classify_detailed`."""
        token_lists = classification.read_texts(texts, top_k, self.tokenizer, self.config.data)
        ids = [classification.text_ids(tokens, self.vocabs[0]) for tokens in token_lists]
        probabilities = np.zeros((len(ids), len(self.labels)), dtype=np.float32)
        weights: list[Array | None] = [None] * len(ids)
        for chunk in length_batches([len(row) for row in ids], batch_size):
            logits, attention = self.model.scores(*pad([ids[index] for index in chunk]))
            probabilities[chunk] = NumpyArrays().softmax(logits)
            if attention is not None:
                for row, index in enumerate(chunk):
                    weights[index] = attention[row, :len(ids[index])]
        return classification.ranked(probabilities, token_lists, weights, self.labels, top_k)
