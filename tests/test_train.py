"""Trainer schedules: the linear schedule decays the learning rate to zero over the step budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import toy_pairs

from seq2seq import api
from seq2seq.config import Config, apply_overrides, validate
from seq2seq.errors import ConfigError

TINY = ["model.hidden_size=16", "model.embedding_size=8", "data.src.kind=word", "data.tgt.kind=word",
        "data.src.split_punctuation=false", "data.tgt.split_punctuation=false", "train.precision=fp32",
        "train.threads=1", "data.batch_size=8", "train.epochs=0"]


def test_linear_schedule_reaches_zero_at_the_step_budget(tmp_path: Path) -> None:
    config = apply_overrides(Config(), [*TINY, "train.max_steps=100", "train.lr_schedule=linear",
                                        "train.eval_every=50"])
    api.train(config, toy_pairs("copy", 200, seed=1), toy_pairs("copy", 20, seed=2), tmp_path)
    rates = [json.loads(line)["lr"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["event"] == "eval"]
    assert rates[0] == pytest.approx(1e-3 * (1 - 49 / 100))
    assert rates[-1] == pytest.approx(1e-3 * (1 - 99 / 100))


def test_linear_schedule_needs_a_budget() -> None:
    config = apply_overrides(Config(), ["train.lr_schedule=linear"])
    with pytest.raises(ConfigError, match="needs a budget"):
        validate(config)
