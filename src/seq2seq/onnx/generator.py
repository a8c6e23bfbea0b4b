"""OnnxGenerator: text from an exported language model with ONNX Runtime and numpy only (no PyTorch)."""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from seq2seq import search
from seq2seq.metadata import ModelMetadata
from seq2seq.onnx.graphs import Array
from seq2seq.onnx.model import OnnxModel
from seq2seq.options import DecodingOptions, generation_options
from seq2seq.tokenizers import Tokenizer
from seq2seq.vocab import BOS_ID, EOS_ID, UNK_ID, Vocab

logger = logging.getLogger(__name__)


@dataclass
class OnnxGenerator:
    """An exported language model with its tokenizer and vocabulary; `TextGenerator.generate` without torch."""

    model: OnnxModel
    metadata: ModelMetadata
    manifest: dict[str, Any]

    @property
    def config(self) -> Any:
        return self.metadata.config

    @property
    def tokenizer(self) -> Tokenizer:
        return self.metadata.tokenizers[0]

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
