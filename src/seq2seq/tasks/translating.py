"""The text front end of a translation model: tokenize, truncate, sort by length, batch, decode, detokenize and
assemble `Translation`s, and score outputs against references; the part of translation that Translator (PyTorch)
and OnnxTranslator (ONNX Runtime) share, without torch. They differ only in their runtime (`facade.Facade`), and a
single PyTorch model scores references in one teacher-forced pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from seq2seq.config import Config, source_truncation
from seq2seq.data.batching import length_batches
from seq2seq.data.checks import check_outputs_vary
from seq2seq.data.examples import encode_pairs
from seq2seq.data.tokenizers import Tokenizer
from seq2seq.data.vocab import PAD, PAD_ID, Vocab
from seq2seq.decoding.arrays import Array
from seq2seq.decoding.options import BATCH_SIZE, DecodingOptions, Hypothesis, output_cap, with_knobs
from seq2seq.decoding.scoring import stepwise_nll
from seq2seq.decoding.search import decode
from seq2seq.tasks.facade import Facade


@dataclass
class Translation:
    """One output of `translate_detailed`, with what it came from.

    `tokens` are the output tokens as the model produced them (</s> last unless cut at the maximum length): the rows
    of `attention` (T, S), whose columns are `src_tokens`; `attention` is None for models without attention (a
    tensor from PyTorch, a numpy array from the ONNX runtime).
    """

    text: str
    log_prob: float
    src_tokens: list[str]
    tokens: list[str]
    token_log_probs: list[float]
    attention: Array | None


class TextTranslator(Facade):
    """Text in, text out over a model's tokenizers and vocabularies; a facade supplies its runtime."""

    model: Any
    config: Config
    tokenizers: tuple[Tokenizer, ...]
    vocabs: tuple[Vocab, ...]
    target_lengths: dict[str, float]

    def perplexity(self, pairs: Sequence[Any], batch_size: int = BATCH_SIZE) -> float:
        """exp of the mean per-token cross-entropy of the references of pairs (objects with src and tgt), in fp32."""
        from seq2seq.evaluation import metrics  # sacrebleu and friends: a quarter second that translating skips
        examples, _ = encode_pairs(pairs, self.tokenizers, self.vocabs, copy=self.config.model.copy,
                                   truncate_src=source_truncation(self.config))
        xp, total, tokens = self._arrays, 0.0, 0
        for start in range(0, len(examples), batch_size):
            part = examples[start:start + batch_size]
            src, src_lengths = xp.padded([example.src for example in part], PAD_ID, xp.int64)
            tgt, _ = xp.padded([example.tgt for example in part], PAD_ID, xp.int64)  # <s> ... </s>
            nll, count = self._reference_nll(src, src_lengths, tgt[:, :-1], tgt[:, 1:])
            total, tokens = total + nll, tokens + count
        return metrics.perplexity(total, tokens)

    def _reference_nll(self, src: Array, src_lengths: Array, tgt_in: Array, tgt_out: Array) -> tuple[float, int]:
        """Summed negative log-likelihood (nats) of the references tgt_out (B, T) and their count: fed one step at a
        time (`scoring.stepwise_nll`)."""
        return stepwise_nll(self.model, src, src_lengths, tgt_in, tgt_out)

    def summary_length(self) -> int:
        """A maximum output length (</s> included) that 99% of the training targets fit: the default limit of
        `seq2seq summarize`; 0 (relative to the source) when the checkpoint does not record target lengths."""
        return int(self.target_lengths["p99"]) + 1 if self.target_lengths else 0

    def translate(self, texts: Sequence[str], options: DecodingOptions | None = None, *,
                  batch_size: int = BATCH_SIZE, **knobs: Any) -> list[str] | list[list[str]]:
        """Outputs for each text, in order; unknown tokens in the input map to <unk>.

        options, or keyword arguments named as its fields (`strategy="beam", beam_size=5`), say how to decode
        (`seq2seq.decoding.DecodingOptions`). Returns one string per text, or, with n_best or num_samples above 1,
        a list of that many strings per text (best first for beam search).
        """
        options = with_knobs(options, knobs)
        results = self.translate_detailed(texts, options, batch_size)
        if options.per_input == 1:
            return [translations[0].text for translations in results]
        return [[translation.text for translation in translations] for translations in results]

    def translate_detailed(self, texts: Sequence[str], options: DecodingOptions | None = None,
                           batch_size: int = BATCH_SIZE) -> list[list[Translation]]:
        """For each text, its translations (n_best or num_samples of them, else one) with scores and attention."""
        if isinstance(texts, str):
            raise TypeError("translate() takes a list of strings; wrap a single text in a list")
        options = options or DecodingOptions()
        sources = [self.tokenizers[0].tokenize(text)[:source_truncation(self.config) or None] for text in texts]
        encoded = [self._encode_source(tokens) for tokens in sources]
        ids = [row or [PAD_ID] for row, _ in encoded]
        results: list[list[Translation]] = [[] for _ in ids]
        xp = self._arrays
        generator, cap = xp.random_source(options.seed), output_cap(self.target_lengths)
        for chunk in length_batches([len(row) for row in ids], batch_size):
            src, src_lengths = xp.padded([ids[i] for i in chunk], PAD_ID, xp.int64)
            with self._computing():
                hypotheses = decode(self.model, src, src_lengths, options, generator, cap)
            for index, found in zip(chunk, hypotheses, strict=True):
                results[index] = [self._translation(hypothesis, sources[index] or [PAD], encoded[index][1])
                                  for hypothesis in found]
        return results

    def _encode_source(self, tokens: list[str]) -> tuple[list[int], list[str]]:
        """Source ids, and for a copying model the unknown tokens they extend the vocabulary with."""
        if self.config.model.copy:
            return self.vocabs[0].encode_extended(tokens)
        return self.vocabs[0].encode(tokens), []

    def _translation(self, hypothesis: Hypothesis, src_tokens: list[str], extension: list[str]) -> Translation:
        vocab = self.vocabs[1]
        text = self.tokenizers[1].detokenize(vocab.decode(hypothesis.tokens, extension))
        tokens = [vocab.itos[i] if i < len(vocab) else extension[i - len(vocab)] for i in hypothesis.tokens]
        return Translation(text, hypothesis.log_prob, src_tokens, tokens, hypothesis.token_log_probs,
                           hypothesis.attention)

    def evaluate(self, pairs: Sequence[Any], batch_size: int = BATCH_SIZE,
                 options: DecodingOptions | None = None) -> dict[str, Any]:
        """Scores on pairs (objects with src and tgt; of the first output per source); lines sharing a source are
        one item with several references."""
        from seq2seq.evaluation import metrics  # sacrebleu and friends: a quarter second that translating skips
        sources, references = metrics.group_references([p.src for p in pairs], [p.tgt for p in pairs])
        hypotheses = [found[0].text for found in self.translate_detailed(sources, options, batch_size)]
        check_outputs_vary(sources, hypotheses)
        scores: dict[str, Any] = metrics.score_corpus(hypotheses, references)
        scores["perplexity"] = self.perplexity(pairs, batch_size)
        scores["bleu_signature"] = metrics.bleu(hypotheses, references).signature
        scores["chrf_signature"] = metrics.chrf(hypotheses, references).signature
        return scores
