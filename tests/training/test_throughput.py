"""Training throughput: the rate of each logging interval in metrics.jsonl, and the first-third / last-third check."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

from seq2seq import api
from seq2seq.config import Config, apply_overrides
from seq2seq.training import throughput
from seq2seq.training.trainer import Trainer
from tests.conftest import toy_pairs
from tests.training.test_train import TINY


def train_rows(out: Path, overrides: list[str]) -> list[dict]:
    """The train rows of the metrics.jsonl of a tiny copy model trained for 100 steps with the overrides."""
    config = apply_overrides(Config(), [*TINY, "train.max_steps=100", "train.checkpoint_every=1000", *overrides])
    api.train(config, toy_pairs("copy", 200, seed=1), toy_pairs("copy", 20, seed=2), out)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [row for row in rows if row["event"] == "train"]


def step_seconds(previous: dict, row: dict) -> float:
    """The seconds of training steps between two train rows that the later row's interval rate implies."""
    return (row["tokens"] - previous["tokens"]) / row[throughput.INTERVAL]


def test_interval_rates_are_the_tokens_of_each_interval_over_its_time(tmp_path: Path) -> None:
    rows = train_rows(tmp_path, ["train.eval_every=1000"])
    assert [row["step"] for row in rows] == [1, 50, 100]
    for previous, row in itertools.pairwise(rows):
        wall = row["time"] - previous["time"]  # nothing but steps in between: no evaluation, no checkpoint
        assert 0.7 * wall <= step_seconds(previous, row) <= wall + 0.002
        elapsed = row["elapsed"]  # rounded to 0.1 s in the row
        low, high = row["tokens"] / (elapsed + 0.05), row["tokens"] / max(elapsed - 0.05, 1e-3)
        assert low - 1 <= row["mean_tokens_per_second"] <= high + 1


def test_interval_rates_leave_out_the_time_of_evaluations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    evaluate_and_save = Trainer.evaluate_and_save

    def slow(trainer: Trainer) -> None:
        time.sleep(0.3)
        evaluate_and_save(trainer)

    monkeypatch.setattr(Trainer, "evaluate_and_save", slow)
    rows = train_rows(tmp_path, ["train.eval_every=50"])
    for previous, row in itertools.pairwise(rows[1:]):  # an evaluation right after each of the previous rows
        assert step_seconds(previous, row) <= row["time"] - previous["time"] - 0.3


def test_interval_rate_counts_tokens_over_the_seconds_of_steps() -> None:
    rate = throughput.IntervalRate()
    rate.add(300, 0.5)
    rate.add(100, 0.5)
    assert rate.take() == 400
    rate.add(50, 0.25)
    assert rate.take() == 200


def test_steady_rates_leave_out_the_first_step_and_eval_rows() -> None:
    rate = throughput.INTERVAL
    rows = [{"event": "train", "step": 1, rate: 10}, {"event": "train", "step": 50, rate: 90},
            {"event": "eval", "step": 50, "loss": 1.0}, {"event": "train", "step": 100, rate: 80}]
    assert throughput.steady_rates(rows) == [90, 80]
    assert throughput.steady_rates(rows[:1]) == [10]


def test_decay_compares_the_medians_of_the_first_and_last_thirds() -> None:
    held = throughput.decay([100, 104, 98, 99, 101, 97, 95, 96, 3])  # one slowed interval does not decide it
    assert (held.first, held.last) == (100, 95) and held.holds()
    assert held.line().startswith("OK: target tokens/s, first third 100, last third 95 (ratio 0.950")
    decayed = throughput.decay([5230, 5000, 4900, 4400, 3500, 3479, 3300, 3310, 3290, 3300])
    assert decayed.ratio == pytest.approx(3300 / 5000) and not decayed.holds()
    assert decayed.line().startswith("FAIL: ")


def test_decay_fails_just_beyond_the_tolerance() -> None:
    assert throughput.decay([100, 100, 100, 90]).holds()
    assert not throughput.decay([100, 100, 100, 89]).holds()
    assert throughput.decay([100, 100, 100, 89]).holds(tolerance=0.2)


def test_decay_needs_three_rates() -> None:
    with pytest.raises(ValueError, match="a decay needs at least 3 interval rates, got 2"):
        throughput.decay([1.0, 2.0])
