"""Lines of scores to print: every metric (evaluate), or those that matter for a seq2seq run's kind of task (the
end of training): G2P word and phoneme error rates, translation BLEU and chrF, summarization ROUGE."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from seq2seq.config import Config

Scores = Mapping[str, Any]

LINES: dict[str, Callable[[Scores], str]] = {
    "bleu": lambda s: f"BLEU = {s['bleu']:.2f}  ({s['bleu_signature']})",
    "chrf": lambda s: f"chrF = {s['chrf']:.2f}  ({s['chrf_signature']})",
    "errors": lambda s: (f"exact match = {s['exact_match']:.2f}%   WER = {s['wer']:.2f}%   CER = {s['cer']:.2f}%   "
                         f"perplexity = {s['perplexity']:.3f}"),
    "rouge": lambda s: f"ROUGE-1 = {s['rouge1']:.2f}   ROUGE-2 = {s['rouge2']:.2f}   ROUGE-L = {s['rougeL']:.2f}",
    "distinct": lambda s: f"distinct-1 = {s['distinct1']:.2f}   distinct-2 = {s['distinct2']:.2f}",
    "g2p": lambda s: (f"word error rate = {100.0 - s['exact_match']:.2f}%   phoneme error rate = {s['wer']:.2f}%   "
                      f"(words right: {s['exact_match']:.2f}%)"),
    "perplexity": lambda s: f"perplexity = {s['perplexity']:.3f}",
}
ALL = ("bleu", "chrf", "errors", "rouge", "distinct")
FOCUS = {"g2p": ("g2p",), "translation": ("bleu", "chrf"), "summarization": ("rouge", "perplexity")}
ERROR_RATE_METRICS = ("exact_match", "wer", "cer")


def task_kind(config: Config) -> str:
    """g2p, translation or summarization, as the config of a seq2seq run suggests: a ROUGE metric, cut sources or
    copying mean summarization; an exact-match or error-rate metric, or characters in and space-separated symbols
    out, G2P."""
    data = config.data
    if config.train.metric.startswith("rouge") or data.truncate_src or config.model.copy:
        return "summarization"
    symbols_out = data.src.kind == "char" and data.tgt.kind == "word" and not data.tgt.split_punctuation
    return "g2p" if config.train.metric in ERROR_RATE_METRICS or symbols_out else "translation"


def score_lines(scores: Scores, groups: Sequence[str] = ALL) -> list[str]:
    """One line per group of LINES."""
    return [LINES[group](scores) for group in groups]


def focused_lines(scores: Scores, config: Config) -> list[str]:
    """The lines that matter for the run's kind of task (`task_kind`)."""
    return score_lines(scores, FOCUS[task_kind(config)])
