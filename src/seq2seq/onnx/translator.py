"""OnnxTranslator: text in, text out, on an exported model with ONNX Runtime and numpy only (no PyTorch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seq2seq.data.metadata import ModelMetadata
from seq2seq.data.vocab import PAD, PAD_ID
from seq2seq.decoding import search
from seq2seq.decoding.options import BATCH_SIZE, DecodingOptions, Hypothesis, output_cap, with_knobs
from seq2seq.onnx.ensemble import OnnxEnsemble
from seq2seq.onnx.graphs import Array, pad
from seq2seq.onnx.model import Exported, OnnxModel


@dataclass
class Translation:
    """One output, as `seq2seq.api.Translation`: text, log-probability, source and output tokens, per-token
    log-probabilities and attention weights (T, S) (a numpy array; None without attention)."""

    text: str
    log_prob: float
    src_tokens: list[str]
    tokens: list[str]
    token_log_probs: list[float]
    attention: Array | None


@dataclass
class OnnxTranslator(Exported):
    """An exported translation model (or ensemble) with its tokenizers and vocabularies; `Translator`'s methods
    without torch."""

    model: OnnxModel | OnnxEnsemble
    metadata: ModelMetadata
    manifest: dict[str, Any]

    def translate(self, texts: Sequence[str], options: DecodingOptions | None = None, *,
                  batch_size: int = BATCH_SIZE, **knobs: Any) -> list[str] | list[list[str]]:
        """Outputs for each text, as `seq2seq.api.Translator.translate` (same knobs, same outputs in fp32)."""
        options = with_knobs(options, knobs)
        results = self.translate_detailed(texts, options, batch_size)
        if options.per_input == 1:
            return [found[0].text for found in results]
        return [[translation.text for translation in found] for found in results]

    def translate_detailed(self, texts: Sequence[str], options: DecodingOptions | None = None,
                           batch_size: int = BATCH_SIZE) -> list[list[Translation]]:
        """For each text, its translations (n_best or num_samples of them, else one) with scores and attention."""
        if isinstance(texts, str):
            raise TypeError("translate() takes a list of strings; wrap a single text in a list")
        options = options or DecodingOptions()
        data = self.config.data
        keep = data.max_src_length if data.truncate_src else None
        sources = [self.metadata.tokenizers[0].tokenize(text)[:keep] for text in texts]
        encoded = [self._encode_source(tokens) for tokens in sources]
        ids = [row or [PAD_ID] for row, _ in encoded]
        results: list[list[Translation]] = [[] for _ in ids]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths share a batch
        generator, cap = np.random.default_rng(options.seed), output_cap(self.metadata.target_lengths)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            src, src_lengths = pad([ids[i] for i in chunk])
            for index, found in zip(chunk, search.decode(self.model, src, src_lengths, options, generator, cap),
                                    strict=True):
                results[index] = [self._translation(hypothesis, sources[index] or [PAD], encoded[index][1])
                                  for hypothesis in found]
        return results

    def _encode_source(self, tokens: list[str]) -> tuple[list[int], list[str]]:
        if self.config.model.copy:
            return self.metadata.vocabs[0].encode_extended(tokens)
        return self.metadata.vocabs[0].encode(tokens), []

    def _translation(self, hypothesis: Hypothesis, src_tokens: list[str], extension: list[str]) -> Translation:
        vocab = self.metadata.vocabs[1]
        text = self.metadata.tokenizers[1].detokenize(vocab.decode(hypothesis.tokens, extension))
        tokens = [vocab.itos[i] if i < len(vocab) else extension[i - len(vocab)] for i in hypothesis.tokens]
        return Translation(text, hypothesis.log_prob, src_tokens, tokens, hypothesis.token_log_probs,
                           hypothesis.attention)

    def evaluate(self, pairs: Sequence[Any], batch_size: int = BATCH_SIZE,
                 options: DecodingOptions | None = None) -> dict[str, Any]:
        """Scores on pairs (objects with src and tgt), as `Translator.evaluate`; perplexity is not computed (nan)."""
        from seq2seq.evaluation import metrics  # sacrebleu and friends: a quarter second that translating skips
        sources, references = metrics.group_references([p.src for p in pairs], [p.tgt for p in pairs])
        hypotheses = [found[0].text for found in self.translate_detailed(sources, options, batch_size)]
        scores: dict[str, Any] = metrics.score_corpus(hypotheses, references)
        scores["perplexity"] = float("nan")
        scores["bleu_signature"] = metrics.bleu(hypotheses, references).signature
        scores["chrf_signature"] = metrics.chrf(hypotheses, references).signature
        return scores

    def attends(self) -> bool:
        """Whether the model (every member of an ensemble) has attention weights to show: its state holds them."""
        return all("attention" in member["layout"]["state"] for member in self.manifest.get("members", [self.manifest]))

    def summary_length(self) -> int:
        """As `Translator.summary_length`."""
        lengths = self.metadata.target_lengths
        return int(lengths["p99"]) + 1 if lengths else 0

