"""The end of a training run prints the scores that matter for its task, evaluate prints them all."""

from __future__ import annotations

from pathlib import Path

import pytest

from seq2seq import cli
from seq2seq.config import Config, apply_overrides, load_config
from seq2seq.evaluation.reports import focused_lines, score_lines, task_kind

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SCORES = {"bleu": 41.0, "bleu_signature": "nrefs:1", "chrf": 60.5, "chrf_signature": "nc:6", "exact_match": 70.0,
          "wer": 8.25, "cer": 4.0, "perplexity": 1.5, "rouge1": 30.0, "rouge2": 10.0, "rougeL": 28.0,
          "distinct1": 50.0, "distinct2": 70.0}


@pytest.mark.parametrize(("config", "kind"), [("g2p.yaml", "g2p"), ("summarize.yaml", "summarization"),
                                              ("copy.yaml", "translation"), ("chat.yaml", "translation")])
def test_the_task_kind_follows_the_recipe(config: str, kind: str) -> None:
    assert task_kind(load_config(CONFIGS / config)) == kind


def test_each_kind_prints_its_own_scores() -> None:
    g2p = apply_overrides(Config(), ["data.tgt.kind=word", "data.tgt.split_punctuation=false"])
    assert focused_lines(SCORES, g2p) == ["word error rate = 30.00%   phoneme error rate = 8.25%   "
                                          "(words right: 70.00%)"]
    assert focused_lines(SCORES, apply_overrides(Config(), ["train.metric=bleu"])) == [
        "BLEU = 41.00  (nrefs:1)", "chrF = 60.50  (nc:6)"]
    assert focused_lines(SCORES, apply_overrides(Config(), ["train.metric=rougeL"])) == [
        "ROUGE-1 = 30.00   ROUGE-2 = 10.00   ROUGE-L = 28.00", "perplexity = 1.500"]
    assert len(score_lines(SCORES)) == 5


def test_a_g2p_run_ends_with_word_and_phoneme_error_rates(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    words = ["cat", "dog", "bird", "fish", "cow", "pig", "hen", "ant", "bee", "owl"]
    data = tmp_path / "g2p.tsv"
    data.write_text("".join(f"{w}\t{' '.join(w.upper())}\n" for w in words), encoding="utf-8")
    code = cli.main(["train", "--config", str(CONFIGS / "g2p.yaml"), "--train", str(data), "--dev", str(data),
                     "--test", str(data), "--out", str(tmp_path / "run"), "model.hidden_size=16",
                     "model.embedding_size=8", "train.max_steps=2", "train.eval_every=0", "train.precision=fp32",
                     "train.threads=1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "word error rate = " in out and "phoneme error rate = " in out
    assert "ROUGE" not in out and "BLEU" not in out and "distinct" not in out
