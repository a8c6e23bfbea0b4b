"""Corpus-level evaluation metrics: BLEU, chrF, exact match, WER, CER, ROUGE, distinct-n and perplexity; accuracy,
per-class precision, recall and F1, macro-F1 and the confusion matrix of a classifier."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import Levenshtein
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.metrics.base import Metric


@dataclass(frozen=True)
class MetricScore:
    """A corpus score with the sacrebleu signature needed to reproduce it."""

    score: float
    signature: str
    name: str

    def __str__(self) -> str:
        return f"{self.name} = {self.score:.2f} ({self.signature})"


def group_references(sources: Sequence[str], targets: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Merge lines with the same source into one item with several references, in first-seen order.

    Args:
        sources: Source line of each pair.
        targets: Target line of each pair.

    Returns:
        The distinct sources and, for each, its distinct targets in first-seen order.

    Raises:
        ValueError: If the two sequences differ in length.
    """
    _check_lengths("sources", len(sources), "targets", len(targets))
    grouped: dict[str, list[str]] = {}
    for source, target in zip(sources, targets, strict=True):
        references = grouped.setdefault(source, [])
        # A repeated pair adds no information but would inflate the reference count.
        if target not in references:
            references.append(target)
    return list(grouped), list(grouped.values())


def bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> MetricScore:
    """Corpus BLEU with sacrebleu's default settings (13a tokenizer, exp smoothing)."""
    return _sacrebleu_score(BLEU(), hypotheses, references)


def chrf(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> MetricScore:
    """Corpus chrF2 with sacrebleu's default settings (character 6-grams, beta 2)."""
    return _sacrebleu_score(CHRF(), hypotheses, references)


def exact_match(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Percentage of hypotheses equal to at least one of their references."""
    _check_corpus(hypotheses, references)
    hits = sum(hypothesis in refs for hypothesis, refs in zip(hypotheses, references, strict=True))
    return 100.0 * hits / len(hypotheses)


def wer(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Word error rate in percent, over whitespace-separated tokens (phoneme error rate for G2P)."""
    return _error_rate(hypotheses, references, str.split)


def cer(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Character error rate in percent, spaces included."""
    return _error_rate(hypotheses, references, list)


def distinct_n(outputs: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams of the outputs (whitespace tokens), in percent: the diversity of the
    replies of a chat model (distinct-1, distinct-2 of Li et al., 2016). 0 when no output has n tokens."""
    if n < 1:
        raise ValueError(f"distinct_n needs n >= 1, got {n}")
    ngrams = [tuple(words[i:i + n]) for words in map(str.split, outputs) for i in range(len(words) - n + 1)]
    return 100.0 * len(set(ngrams)) / len(ngrams) if ngrams else 0.0


ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def rouge(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures in percent, from the rouge-score package (its default
    tokenizer, Porter stemming); an item with several references takes its best score per type."""
    _check_corpus(hypotheses, references)
    from rouge_score.rouge_scorer import RougeScorer  # imports nltk: loaded only when ROUGE is asked for
    from rouge_score.tokenizers import DefaultTokenizer

    scorer = RougeScorer(list(ROUGE_TYPES), tokenizer=DefaultTokenizer(use_stemmer=True))  # the default; no log line
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for hypothesis, refs in zip(hypotheses, references, strict=True):
        scores = scorer.score_multi(list(refs), hypothesis)
        for name in ROUGE_TYPES:
            totals[name] += scores[name].fmeasure
    return {name: 100.0 * total / len(hypotheses) for name, total in totals.items()}


def perplexity(total_nll: float, num_tokens: int) -> float:
    """Exponential of the mean negative log-likelihood per token (natural log).

    Raises:
        ValueError: If num_tokens is not positive.
    """
    if num_tokens <= 0:
        raise ValueError(f"perplexity needs at least one token, got num_tokens={num_tokens}")
    try:
        return math.exp(total_nll / num_tokens)
    except OverflowError:
        # An untrained or diverged model can have a mean NLL beyond what a float can exponentiate.
        return math.inf


CORPUS_METRICS: dict[str, Callable[[Sequence[str], Sequence[Sequence[str]]], dict[str, float]]] = {
    "bleu": lambda hyps, refs: {"bleu": bleu(hyps, refs).score},
    "chrf": lambda hyps, refs: {"chrf": chrf(hyps, refs).score},
    "exact_match": lambda hyps, refs: {"exact_match": exact_match(hyps, refs)},
    "wer": lambda hyps, refs: {"wer": wer(hyps, refs)},
    "cer": lambda hyps, refs: {"cer": cer(hyps, refs)},
    "rouge": rouge,
    "distinct": lambda hyps, refs: {"distinct1": distinct_n(hyps, 1), "distinct2": distinct_n(hyps, 2)},
}
"""Each group of text metrics by name, computed together (the three ROUGE types share one pass)."""


def score_corpus(hypotheses: Sequence[str], references: Sequence[Sequence[str]],
                 groups: Sequence[str] = tuple(CORPUS_METRICS)) -> dict[str, float]:
    """The text metrics of the named groups (by default all: bleu, chrf, exact_match, wer, cer, rouge1, rouge2,
    rougeL, distinct1, distinct2), keyed by metric."""
    scores: dict[str, float] = {}
    for name in groups:
        scores.update(CORPUS_METRICS[name](hypotheses, references))
    return scores


def metric_group(metric: str) -> str:
    """The CORPUS_METRICS group that computes a metric (rougeL -> rouge)."""
    return "rouge" if metric in ROUGE_TYPES else metric


def _check_lengths(first: str, first_len: int, second: str, second_len: int) -> None:
    """Raise ValueError naming both lengths if they differ."""
    if first_len != second_len:
        raise ValueError(f"{first_len} {first} but {second_len} {second}: they must pair up one to one")


def _check_corpus(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    """Raise ValueError unless the corpus is non-empty and every hypothesis has at least one reference."""
    if not hypotheses:
        raise ValueError("cannot score an empty list of hypotheses")
    _check_lengths("hypotheses", len(hypotheses), "reference sets", len(references))
    for index, refs in enumerate(references):
        if isinstance(refs, str):
            raise ValueError(f"references[{index}] is a string; expected a list of reference strings")
        if not refs:
            raise ValueError(f"item {index} has no reference")


def _reference_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Transpose per-item reference lists into sacrebleu's reference streams.

    sacrebleu drops None entries per segment (and reports nrefs:var), so items with fewer references are
    padded with None; an empty string would instead count as a real, empty reference.
    """
    width = max(len(refs) for refs in references)
    return [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]


def _sacrebleu_score(
    metric: Metric, hypotheses: Sequence[str], references: Sequence[Sequence[str]]
) -> MetricScore:
    """Score the corpus with a sacrebleu metric and keep its signature."""
    _check_corpus(hypotheses, references)
    result = metric.corpus_score(list(hypotheses), _reference_streams(references))
    return MetricScore(score=result.score, signature=str(metric.get_signature()), name=result.name)


def _error_rate(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    split: Callable[[str], list[str]],
) -> float:
    """Total edits over the total length of the closest reference of each item, in percent.

    Among equally close references the first listed one is used.
    """
    _check_corpus(hypotheses, references)
    edits = length = 0
    for hypothesis, refs in zip(hypotheses, references, strict=True):
        hyp_units = split(hypothesis)
        distance, ref_units = min(
            ((Levenshtein.distance(hyp_units, units), units) for units in map(split, refs)),
            key=lambda pair: pair[0],
        )
        edits += distance
        length += len(ref_units)
    if length == 0:
        raise ValueError("error rate is undefined: the closest references are all empty")
    return 100.0 * edits / length


def classification_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """Accuracy and macro-F1 in percent, and each label's precision, recall, F1 (percent) and support.

    The labels are those of the references and the predictions (as scikit-learn's): a label never predicted has
    precision 0, a label never in the references recall 0; F1 is 0 where precision and recall are both 0.
    """
    _check_lengths("predictions", len(predictions), "references", len(references))
    if not references:
        raise ValueError("cannot score an empty list of predictions")
    pairs = Counter(zip(references, predictions, strict=True))
    per_class = {label: _class_scores(label, pairs) for label in sorted(set(references) | set(predictions))}
    correct = sum(count for (reference, prediction), count in pairs.items() if reference == prediction)
    return {"accuracy": 100.0 * correct / len(references),
            "macro_f1": sum(scores["f1"] for scores in per_class.values()) / len(per_class), "per_class": per_class}


def _class_scores(label: str, pairs: Counter[tuple[str, str]]) -> dict[str, float]:
    """Precision, recall and F1 (percent) and support of one label, from the counts of (reference, prediction)."""
    hits = pairs[(label, label)]
    predicted = sum(count for (_, prediction), count in pairs.items() if prediction == label)
    support = sum(count for (reference, _), count in pairs.items() if reference == label)
    f1 = 200.0 * hits / (predicted + support) if predicted + support else 0.0
    return {"precision": 100.0 * hits / predicted if predicted else 0.0,
            "recall": 100.0 * hits / support if support else 0.0, "f1": f1, "support": support}


def confusion_matrix(predictions: Sequence[str], references: Sequence[str], labels: Sequence[str]) -> list[list[int]]:
    """Counts (len(labels), len(labels)): row i holds the texts labelled labels[i], column j those predicted
    labels[j] (scikit-learn's layout); pairs with a label outside labels are not counted."""
    _check_lengths("predictions", len(predictions), "references", len(references))
    index = {label: position for position, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for reference, prediction in zip(references, predictions, strict=True):
        if reference in index and prediction in index:
            matrix[index[reference]][index[prediction]] += 1
    return matrix

