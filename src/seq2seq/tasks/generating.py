"""Prompts in, text out for a language model: the part of generation that TextGenerator (PyTorch) and OnnxGenerator
(ONNX Runtime) share, without torch. They differ only in their runtime (`facade.Facade`) and in evaluate."""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from functools import partial
from typing import Any

from seq2seq.data.tokenizers import Tokenizer
from seq2seq.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocab
from seq2seq.decoding.arrays import Array
from seq2seq.decoding.options import DecodingOptions, generation_options
from seq2seq.decoding.search import Decoded, ban_tokens, build_processors, finish, stream
from seq2seq.decoding.written_text import check_streamable, written_pieces
from seq2seq.errors import ConfigError
from seq2seq.evaluation.adaptation import Adaptation
from seq2seq.tasks.facade import Facade

logger = logging.getLogger(__name__)

CANNOT_ADAPT = ("an exported language model cannot adapt as it reads (that takes gradient steps): use its run "
                "directory")


class TextGenerating(Facade):
    """generate and stream over a language model's tokenizer and vocabulary; a facade supplies its runtime."""

    model: Any
    tokenizer: Tokenizer
    vocab: Vocab

    def adapted_to(self, text: str, adaptation: Adaptation) -> TextGenerating:
        """A generator that learned from text before writing (`generate --adapt`); only a PyTorch model can."""
        raise ConfigError(CANNOT_ADAPT)

    def generate(self, prompt: str = "", options: DecodingOptions | None = None, *, stop_at_end: bool = False,
                 **knobs: Any) -> list[str]:
        """Texts, each the prompt followed by what the model writes after it.

        Args:
            prompt: the start of the text; tokens never seen in training are read as <unk> (and kept as written
                in the returned texts).
            options, knobs: how to write (`seq2seq.decoding.DecodingOptions`, or its fields as keywords) over
                GENERATION_DEFAULTS: sampling at temperature 1, max_length tokens after the prompt (default 200),
                num_samples texts; `num` is a synonym of num_samples and temperature 0 means greedy. A seed gives
                the same texts run after run; an export draws with numpy's generator, so not the texts PyTorch
                draws.
            stop_at_end: end a text early where the model writes </s> (the end of an entry); otherwise </s> is
                never chosen and every text gets max_length tokens.
        """
        options = generation_options(options, knobs)
        prompt_tokens = self.tokenizer.tokenize(prompt)
        with self._computing():
            outputs = finish(self._steps(prompt_tokens, options, stop_at_end))  # (num, T)
        return [self.tokenizer.detokenize(prompt_tokens + self.vocab.decode(row)) for row in outputs.tokens.tolist()]

    def stream(self, prompt: str = "", options: DecodingOptions | None = None, *, stop_at_end: bool = False,
               **knobs: Any) -> Iterator[str]:
        """What `generate` writes after the prompt (one text), in pieces as its tokens are produced.

        The options are checked at once (ConfigError); the pieces, joined, are the text generate() writes after the
        prompt with the same options (same seed, same text).
        """
        options = generation_options(options, knobs)
        check_streamable(options)
        prompt_tokens = self.tokenizer.tokenize(prompt)
        steps = self._each_computing(self._steps(prompt_tokens, options, stop_at_end))
        return written_pieces(steps, prompt_tokens, self.tokenizer, self.vocab)

    def _each_computing(self, steps: Iterator[Array]) -> Iterator[Array]:
        """The steps, each computed in `_computing`, which is left between steps (the caller's code runs there)."""
        while True:
            with self._computing():
                tokens = next(steps, None)
            if tokens is None:
                return
            yield tokens

    def _steps(self, prompt_tokens: list[str], options: DecodingOptions, stop_at_end: bool
               ) -> Generator[Array, None, Decoded]:
        """`search.stream` after the prompt with the options' strategy and processors."""
        ids = self.vocab.encode(prompt_tokens)
        if UNK_ID in ids:
            logger.warning("the prompt has %d tokens never seen in training; the model reads them as <unk>",
                           ids.count(UNK_ID))
        processors = build_processors(options)
        if not stop_at_end:
            processors.insert(0, partial(ban_tokens, token_ids=(EOS_ID,)))  # a mask: before top-k / top-p
        xp = self._arrays
        src, lengths = xp.padded([[BOS_ID, *ids]], PAD_ID, xp.int64)  # (1, P), (1,)
        return stream(self.model, src, lengths, options.max_length, processors, options.per_input,
                      xp.random_source(options.seed), draw=options.strategy == "sample")
