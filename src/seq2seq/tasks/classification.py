"""What a classifier says of a text: its texts read, batched by length, scored by the model and its labels ranked;
the part of classification that TextClassifier (PyTorch) and OnnxClassifier (ONNX Runtime) share, without torch.
They differ only in their runtime (`facade.Facade`) and in where they learn whether the model attends."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from seq2seq.config import Config, DataConfig
from seq2seq.data.batching import length_batches
from seq2seq.data.tokenizers import Tokenizer
from seq2seq.data.truncation import cut_text
from seq2seq.data.vocab import LABEL_OFFSET, PAD_ID, Vocab
from seq2seq.decoding.arrays import Array, Arrays
from seq2seq.errors import ConfigError
from seq2seq.tasks.facade import Facade

if TYPE_CHECKING:
    from torch import Tensor

BATCH_SIZE = 64  # texts classified together by default


@dataclass
class Classification:
    """What `TextClassifier.classify_detailed` (or `OnnxClassifier`'s) says of one text.

    `top` holds the k most likely labels with their probabilities, best first (`label`, `probability` are its
    first); `attention` (S,) is the attention pooling's weight on each of `tokens` (the tokens the model read), a
    Tensor (a numpy array from an export), None for the other poolings.
    """

    label: str
    probability: float
    top: list[tuple[str, float]]
    tokens: list[str]
    attention: Tensor | NDArray[Any] | None


class Classifying(Facade):
    """What TextClassifier and OnnxClassifier share above their runtime and their (texts, labels) vocabularies."""

    model: Any
    config: Config
    tokenizer: Tokenizer
    vocabs: tuple[Vocab, ...]

    def classify_detailed(self, texts: Sequence[str], top_k: int = 1, batch_size: int = BATCH_SIZE
                          ) -> list[Classification]:
        """For each text, its top_k labels with probabilities, its tokens and the attention pooling's weights."""
        token_lists = read_texts(texts, top_k, self.tokenizer, self.config.data)
        if not token_lists:
            return []
        rows = [text_ids(tokens, self.vocabs[0]) for tokens in token_lists]
        logits, weights = class_logits(self.model, rows, batch_size, self._arrays, self._computing)
        return ranked(np.asarray(self._arrays.softmax(logits)), token_lists, weights, self.labels, top_k)

    @property
    def labels(self) -> list[str]:
        """The labels the model knows, class by class (most frequent in training first)."""
        return label_names(self.vocabs[1])

    def classify(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> list[str]:
        """The most likely label of each text, in order; unknown tokens in the texts map to <unk>."""
        return [found.label for found in self.classify_detailed(texts, batch_size=batch_size)]

    def evaluate(self, pairs: Sequence[Any], batch_size: int = BATCH_SIZE) -> dict[str, Any]:
        """Accuracy, macro-F1 and per-class precision, recall and F1 (percent) on labelled texts (Pairs, or objects
        with src and tgt; `metrics.classification_scores`); a label the model never saw counts as missed."""
        from seq2seq.evaluation import metrics  # sacrebleu and friends: a quarter second that classifying skips

        predictions = self.classify([pair.src for pair in pairs], batch_size)
        return metrics.classification_scores(predictions, [pair.tgt for pair in pairs])


def label_names(labels: Vocab) -> list[str]:
    """The labels of a label vocabulary, class by class (its first ids are specials)."""
    return labels.itos[LABEL_OFFSET:]


def read_texts(texts: Sequence[str], top_k: int, tokenizer: Tokenizer, data: DataConfig) -> list[list[str]]:
    """The tokens each text is classified on, cut as data says (`cut_text`); a lone string is a TypeError, top_k
    below 1 a ConfigError."""
    if isinstance(texts, str):
        raise TypeError("classify() takes a list of strings; wrap a single text in a list")
    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, not {top_k}")
    return [cut_text(tokenizer.tokenize(text), data) for text in texts]


def text_ids(tokens: list[str], vocab: Vocab) -> list[int]:
    """The ids the model reads for a text's tokens; an empty text reads one <pad>."""
    return vocab.encode(tokens) or [PAD_ID]


def class_logits(model: Any, rows: Sequence[list[int]], batch_size: int, xp: Arrays,
                 computing: Callable[[], AbstractContextManager[Any]]) -> tuple[Array, list[Array | None]]:
    """Logits (N, C) of texts' ids (at least one), in order, and each one's attention pooling weights (S,) (None for
    the other poolings), float32 in host memory; texts of similar lengths share a batch, run in `computing()`."""
    logits: list[Array] = [None] * len(rows)
    weights: list[Array | None] = [None] * len(rows)
    for chunk in length_batches([len(row) for row in rows], batch_size):
        src, src_lengths = xp.padded([rows[index] for index in chunk], PAD_ID, xp.int64)
        with computing():
            scores, attention = model.scores(src, src_lengths)  # (B, C), (B, S)
        scores, attention = (None if part is None else xp.on_host(xp.astype(part, xp.float32))
                             for part in (scores, attention))
        for row, index in enumerate(chunk):
            logits[index] = scores[row]
            weights[index] = None if attention is None else attention[row, :len(rows[index])]
    return xp.stack(logits), weights


def ranked(probabilities: NDArray[Any], token_lists: Sequence[list[str]], weights: Sequence[Any], labels: list[str],
           top_k: int) -> list[Classification]:
    """Each text's top_k labels (best first) from the class probabilities (N, C), with its tokens and weights."""
    count = min(top_k, len(labels))
    results = []
    for row, tokens, attention in zip(probabilities, token_lists, weights, strict=True):
        top = [(labels[k], float(row[k])) for k in np.argsort(-row, kind="stable")[:count]]
        results.append(Classification(top[0][0], top[0][1], top, tokens, attention))
    return results
