"""OnnxGenerator: text from an exported language model, and its scores on text, with ONNX Runtime and numpy only
(no PyTorch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seq2seq.data.lm_text import scored_stream, stream_rows, stream_targets, window_reads
from seq2seq.data.metadata import ModelMetadata
from seq2seq.data.vocab import PAD_ID, Vocab
from seq2seq.decoding.scoring import stepwise_nll
from seq2seq.errors import ConfigError
from seq2seq.evaluation.text_scores import text_scores
from seq2seq.onnx.graphs import Array
from seq2seq.onnx.model import Exported, OnnxModel
from seq2seq.tasks.generating import CANNOT_ADAPT, TextGenerating


@dataclass
class OnnxGenerator(Exported, TextGenerating):
    """An exported language model with its tokenizer and vocabulary; `TextGenerator`'s generate, stream (the same
    knobs and defaults; in fp32 the same greedy text) and evaluate without torch."""

    model: OnnxModel
    metadata: ModelMetadata
    manifest: dict[str, Any]

    @property
    def vocab(self) -> Vocab:
        return self.metadata.vocabs[0]

    def evaluate(self, entries: Sequence[str], adaptation: object = None) -> dict[str, float]:
        """Held-out cross-entropy (nats per token), perplexity and bits per character of entries, as
        `TextGenerator.evaluate`: the same stream cut into the same rows (data.batch_size, data.window) and read in
        the same windows (`window_reads`), so the same scores up to float rounding. No entries is a DataError; an
        adaptation (dynamic evaluation) a ConfigError."""
        if adaptation is not None:
            raise ConfigError(CANNOT_ADAPT)
        window = self.config.data.window
        rows = stream_rows(scored_stream(entries, self.tokenizer, self.vocab), self.config.data.batch_size, window)
        if self.manifest["layout"].get("carries_state", True):  # one pass per row: the state carries on
            nll, tokens = self._rows_nll(rows)
        else:
            reads = [self._rows_nll(rows[:, begin:end + 1], start - begin)
                     for begin, start, end in window_reads(rows.shape[1] - 1, window, carried=False)]
            nll, tokens = sum(read[0] for read in reads), sum(read[1] for read in reads)
        return text_scores(nll, tokens, entries)

    def _rows_nll(self, rows: Array, skipped: int = 0) -> tuple[float, int]:
        """Summed negative log-likelihood (nats) of the rows' counted targets (`stream_targets`) after the first
        `skipped` and their count, teacher-forced: the encoder graph reads each row's first token from a zero state
        (as the first step returns its logits, reading no token), then each step reads the next token of the row."""
        targets = stream_targets(rows)  # (B, L)
        targets[:, :skipped] = PAD_ID
        return stepwise_nll(self.model, rows[:, :1], np.ones(len(rows), dtype=np.int64), rows, targets)
