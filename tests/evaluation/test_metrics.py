"""Tests for seq2seq.evaluation.metrics: sacrebleu parity (API and CLI), error rates, exact match and perplexity."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from rouge_score.rouge_scorer import RougeScorer
from sacrebleu.metrics import BLEU, CHRF

from seq2seq.evaluation.metrics import (
    MetricScore,
    bleu,
    cer,
    chrf,
    distinct_n,
    exact_match,
    group_references,
    perplexity,
    rouge,
    score_corpus,
    wer,
)

HYPOTHESES = [
    "the cat is sitting on the mat",
    "he read the book yesterday evening",
    "we will go to the market tomorrow",
    "it is raining again",
    "she likes green tea",
]
FIRST_REFS = [
    "the cat sat on the mat",
    "he read that book last night",
    "tomorrow we are going to the market",
    "it's raining again",
    "she likes green tea",
]
SECOND_REFS = [
    "a cat is on the mat",
    "yesterday evening he read the book",
    "we will go to the market tomorrow",
    "it is raining once more",
    "green tea is what she likes",
]


def _per_item(*streams: list[str]) -> list[list[str]]:
    """Turn reference streams into per-item reference lists."""
    return [list(refs) for refs in zip(*streams, strict=True)]


def _cli_scores(tmp_path: Path, hypotheses: list[str], *streams: list[str]) -> dict[str, dict[str, str]]:
    """Run `python -m sacrebleu REF... -i HYP -m bleu chrf` and return its JSON entries by metric name."""
    hyp_file = tmp_path / "hyp.txt"
    hyp_file.write_text("\n".join(hypotheses) + "\n", encoding="utf-8")
    ref_files = []
    for index, stream in enumerate(streams):
        ref_files.append(tmp_path / f"ref{index}.txt")
        ref_files[-1].write_text("\n".join(stream) + "\n", encoding="utf-8")
    command = [sys.executable, "-m", "sacrebleu", *map(str, ref_files), "-i", str(hyp_file)]
    result = subprocess.run(
        [*command, "-m", "bleu", "chrf", "-w", "6"], capture_output=True, text=True, check=True
    )
    return {entry["name"]: entry for entry in json.loads(result.stdout)}


@pytest.mark.parametrize("streams", [[FIRST_REFS], [FIRST_REFS, SECOND_REFS]], ids=["1ref", "2refs"])
def test_bleu_and_chrf_match_sacrebleu_api(streams: list[list[str]]) -> None:
    references = _per_item(*streams)
    assert bleu(HYPOTHESES, references).score == BLEU().corpus_score(HYPOTHESES, streams).score
    assert chrf(HYPOTHESES, references).score == CHRF().corpus_score(HYPOTHESES, streams).score


@pytest.mark.slow
@pytest.mark.parametrize("streams", [[FIRST_REFS], [FIRST_REFS, SECOND_REFS]], ids=["1ref", "2refs"])
def test_bleu_and_chrf_match_sacrebleu_cli(tmp_path: Path, streams: list[list[str]]) -> None:
    references = _per_item(*streams)
    cli = _cli_scores(tmp_path, HYPOTHESES, *streams)
    for ours in (bleu(HYPOTHESES, references), chrf(HYPOTHESES, references)):
        assert float(f"{ours.score:.6f}") == float(cli[ours.name]["score"])
        assert ours.signature == cli[ours.name]["signature"]
        assert f"nrefs:{len(streams)}|" in ours.signature


def test_variable_reference_counts_drop_missing_references_like_sacrebleu() -> None:
    hypotheses = ["the cat is on the mat", "world"]
    references = [["the cat sat on the mat", "a cat sat on a mat"], ["hello there world"]]
    padded = [["the cat sat on the mat", "hello there world"], ["a cat sat on a mat", None]]
    score = bleu(hypotheses, references)
    assert score.score == BLEU().corpus_score(hypotheses, padded).score
    assert chrf(hypotheses, references).score == CHRF().corpus_score(hypotheses, padded).score
    assert score.signature.startswith("nrefs:var|")
    # An empty-string placeholder would be a real empty reference and shorten BLEU's reference length.
    empty_padded = [padded[0], ["a cat sat on a mat", ""]]
    assert score.score != BLEU().corpus_score(hypotheses, empty_padded).score


def test_metric_score_str_and_frozen() -> None:
    score = bleu(HYPOTHESES, _per_item(FIRST_REFS))
    assert str(score) == f"BLEU = {score.score:.2f} ({score.signature})"
    assert score.signature.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    with pytest.raises(dataclasses.FrozenInstanceError):
        score.score = 0.0  # type: ignore[misc]
    assert isinstance(score, MetricScore)


def test_exact_match_accepts_any_reference() -> None:
    references = [["a", "x"], ["y"], ["q", "r"]]
    assert exact_match(["x", "y", "z"], references) == pytest.approx(200 / 3)
    assert exact_match(["a"], [["a "]]) == 0.0


def test_wer_single_reference() -> None:
    assert wer(["a b c"], [["a x c"]]) == pytest.approx(100 / 3)


def test_wer_is_pooled_over_the_corpus() -> None:
    # 1 + 2 edits over 3 + 4 reference tokens; a mean of per-item rates would give 41.67.
    assert wer(["a b c", "d e"], [["a x c"], ["d e f g"]]) == pytest.approx(300 / 7)


def test_wer_uses_closest_reference() -> None:
    assert wer(["a b c"], [["x y z w", "a b d"]]) == pytest.approx(100 / 3)


def test_wer_tie_picks_first_listed_reference() -> None:
    # "a" and "a b c" are both one edit away; the first one sets the denominator.
    assert wer(["a b"], [["a", "a b c"]]) == pytest.approx(100.0)


def test_cer_counts_characters_including_spaces() -> None:
    assert cer(["abc"], [["abd"]]) == pytest.approx(100 / 3)
    assert cer(["ab"], [["a b"]]) == pytest.approx(100 / 3)
    assert cer(["kitten"], [["sitting", "kitchen"]]) == pytest.approx(200 / 7)


def test_distinct_n_counts_distinct_ngrams_over_all_outputs() -> None:
    assert distinct_n(["a b a", "a c"], 1) == pytest.approx(60.0)  # a b a a c: 3 of 5
    assert distinct_n(["a b a", "a c"], 2) == pytest.approx(100.0)  # (a b) (b a) (a c)
    replies = ["i do not know", "i do not know", "i do"]
    assert distinct_n(replies, 1) == pytest.approx(40.0)  # 4 of 10
    assert distinct_n(replies, 2) == pytest.approx(300 / 7)  # (i do) (do not) (not know): 3 of 7
    assert distinct_n(["", "a"], 2) == 0.0
    with pytest.raises(ValueError, match="n >= 1"):
        distinct_n(["a"], 0)


def test_score_corpus_collects_all_metrics() -> None:
    references = _per_item(FIRST_REFS, SECOND_REFS)
    scores = score_corpus(HYPOTHESES, references)
    assert scores == {
        "bleu": bleu(HYPOTHESES, references).score,
        "chrf": chrf(HYPOTHESES, references).score,
        "exact_match": pytest.approx(40.0),
        "wer": wer(HYPOTHESES, references),
        "cer": cer(HYPOTHESES, references),
        "distinct1": distinct_n(HYPOTHESES, 1),
        "distinct2": distinct_n(HYPOTHESES, 2),
        **rouge(HYPOTHESES, references),
    }


def test_group_references_merges_in_first_seen_order() -> None:
    sources, references = group_references(["a", "b", "a", "a"], ["x", "y", "z", "x"])
    assert sources == ["a", "b"]
    assert references == [["x", "z"], ["y"]]


def test_group_references_length_mismatch() -> None:
    with pytest.raises(ValueError, match="2 sources but 1 targets"):
        group_references(["a", "b"], ["x"])


def test_perplexity() -> None:
    assert perplexity(10 * math.log(4.0), 10) == pytest.approx(4.0)
    assert perplexity(0.0, 3) == 1.0
    assert perplexity(1e6, 1) == math.inf


def test_perplexity_without_tokens() -> None:
    with pytest.raises(ValueError, match="num_tokens=0"):
        perplexity(0.0, 0)


@pytest.mark.parametrize("metric", [bleu, chrf, exact_match, wer, cer, score_corpus])
def test_empty_hypotheses_rejected(metric: Callable[..., object]) -> None:
    with pytest.raises(ValueError, match="empty"):
        metric([], [])


@pytest.mark.parametrize("metric", [bleu, chrf, exact_match, wer, cer])
def test_length_mismatch_names_both_lengths(metric: Callable[..., object]) -> None:
    with pytest.raises(ValueError, match="3 hypotheses but 2 reference sets"):
        metric(["a", "b", "c"], [["a"], ["b"]])


def test_item_without_reference_rejected() -> None:
    with pytest.raises(ValueError, match="item 1 has no reference"):
        bleu(["a", "b"], [["a"], []])


def test_plain_string_references_rejected() -> None:
    with pytest.raises(ValueError, match="is a string"):
        wer(["a b"], ["a b"])


def test_error_rate_with_only_empty_references() -> None:
    with pytest.raises(ValueError, match="empty"):
        wer(["a"], [[""]])


def test_rouge_equals_rouge_score_and_hand_counts() -> None:
    hypotheses = ["the cat sat on the mat", "a quick brown dog"]
    references = [["the cat was sitting on the mat"], ["the quick brown fox", "a quick brown dog jumps"]]
    scorer = RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    first = scorer.score("the cat was sitting on the mat", hypotheses[0])
    second = scorer.score("a quick brown dog jumps", hypotheses[1])  # the better of the two references
    scores = rouge(hypotheses, references)
    for name in ("rouge1", "rouge2", "rougeL"):
        assert scores[name] == pytest.approx(50.0 * (first[name].fmeasure + second[name].fmeasure))
    # by hand: "sat" stems to "sat", "sitting" to "sit": 5 of 6 and 5 of 7 unigrams match -> F = 10/13
    assert first["rouge1"].fmeasure == pytest.approx(10 / 13)
    assert rouge(["x y"], [["x y"]]) == {"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0}
