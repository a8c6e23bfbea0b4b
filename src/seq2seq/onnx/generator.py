"""OnnxGenerator: text from an exported language model, and its scores on text, with ONNX Runtime and numpy only
(no PyTorch)."""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from seq2seq.data.lm_text import scored_stream, stream_rows, stream_targets
from seq2seq.data.metadata import ModelMetadata
from seq2seq.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocab
from seq2seq.decoding import search
from seq2seq.decoding.numpy_arrays import NumpyArrays
from seq2seq.decoding.options import DecodingOptions, generation_options
from seq2seq.decoding.written_text import check_streamable, written_pieces
from seq2seq.evaluation.text_scores import text_scores
from seq2seq.onnx.graphs import Array
from seq2seq.onnx.model import Exported, OnnxModel

logger = logging.getLogger(__name__)


@dataclass
class OnnxGenerator(Exported):
    """An exported language model with its tokenizer and vocabulary; `TextGenerator`'s generate, stream and evaluate
    without torch."""

    model: OnnxModel
    metadata: ModelMetadata
    manifest: dict[str, Any]

    @property
    def vocab(self) -> Vocab:
        return self.metadata.vocabs[0]

    def generate(self, prompt: str = "", options: DecodingOptions | None = None, *, stop_at_end: bool = False,
                 **knobs: Any) -> list[str]:
        """Texts, each the prompt followed by what the model writes after it, as `TextGenerator.generate` (the same
        knobs and defaults; in fp32 the same greedy text). Sampling draws from the same distributions with numpy's
        generator (seeded by `seed`): a seed gives the same texts run after run, not the texts PyTorch draws."""
        options = generation_options(options, knobs)
        prompt_tokens = self.tokenizer.tokenize(prompt)
        rows = search.finish(self._steps(prompt_tokens, options, stop_at_end)).tokens.tolist()  # (num, T)
        return [self.tokenizer.detokenize(prompt_tokens + self.vocab.decode(row)) for row in rows]

    def stream(self, prompt: str = "", options: DecodingOptions | None = None, *, stop_at_end: bool = False,
               **knobs: Any) -> Iterator[str]:
        """What `generate` writes after the prompt (one text), in pieces as its tokens are produced, as
        `TextGenerator.stream`: the options are checked at once (ConfigError), and the pieces, joined, are the text
        generate() writes after the prompt with the same options."""
        options = generation_options(options, knobs)
        check_streamable(options)
        prompt_tokens = self.tokenizer.tokenize(prompt)
        steps = self._steps(prompt_tokens, options, stop_at_end)
        return written_pieces(steps, prompt_tokens, self.tokenizer, self.vocab)

    def evaluate(self, entries: Sequence[str]) -> dict[str, float]:
        """Held-out cross-entropy (nats per token), perplexity and bits per character of entries, as
        `TextGenerator.evaluate`: the same stream cut into the same rows (data.batch_size, data.window), so the same
        scores up to float rounding. No entries is a DataError."""
        rows = stream_rows(scored_stream(entries, self.tokenizer, self.vocab), self.config.data.batch_size,
                           self.config.data.window)
        nll, tokens = self._rows_nll(rows)
        return text_scores(nll, tokens, entries)

    def _rows_nll(self, rows: Array) -> tuple[float, int]:
        """Summed negative log-likelihood (nats) of the rows' counted targets (`stream_targets`) and their count,
        teacher-forced: the encoder graph reads each row's first token from a zero state (as the first step returns
        its logits), then each step reads the next token of the row."""
        targets = stream_targets(rows)  # (B, L)
        memory = self.model.encode(rows[:, :1], np.ones(len(rows), dtype=np.int64))
        state, total = self.model.init_state(memory), 0.0
        for position in range(targets.shape[1]):
            logits, state = self.model.step(rows[:, position], state, memory)  # (B, V); reads no token at 0
            log_probs = NumpyArrays().log_softmax(logits.astype(np.float64))
            picked = np.take_along_axis(log_probs, targets[:, position, None], axis=1)[:, 0]  # (B,)
            total -= float(picked[targets[:, position] != PAD_ID].sum())
        return total, int((targets != PAD_ID).sum())

    def _steps(self, prompt_tokens: list[str], options: DecodingOptions, stop_at_end: bool
               ) -> Generator[Array, None, search.Decoded]:
        """`search.stream` after the prompt with the options' strategy and processors (`TextGenerator._steps`)."""
        ids = self.vocab.encode(prompt_tokens)
        if UNK_ID in ids:
            logger.warning("the prompt has %d tokens never seen in training; the model reads them as <unk>",
                           ids.count(UNK_ID))
        src = np.array([[BOS_ID, *ids]], dtype=np.int64)  # (1, P)
        processors = search.build_processors(options)
        if not stop_at_end:
            processors.insert(0, partial(search.ban_tokens, token_ids=(EOS_ID,)))  # a mask: before top-k / top-p
        return search.stream(self.model, src, np.array([src.shape[1]]), options.max_length, processors,
                             options.per_input, np.random.default_rng(options.seed),
                             draw=options.strategy == "sample")
