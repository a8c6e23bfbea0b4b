"""Schedules: each group's learning rate follows the schedule relative to its own, so the ratios between groups hold."""

from __future__ import annotations

import math

import pytest
import torch

from seq2seq.config import Config, ModelConfig, apply_overrides
from seq2seq.models.seq2seq import Seq2Seq
from seq2seq.models.transformer import WARMUP_STEPS, TransformerLanguageModel
from seq2seq.training.optim import FusedAdam
from seq2seq.training.schedules import CosineDecay, InverseSquareRoot, LinearDecay, PlateauDecay, Progress, schedule_of


def _two_groups() -> FusedAdam:
    return FusedAdam([{"params": [torch.zeros(2, requires_grad=True)], "lr": 0.01},
                      {"params": [torch.zeros(3, requires_grad=True)], "lr": 0.001}], lr=0.5)


def _rates(optimizer: FusedAdam) -> list[float]:
    return [group["lr"] for group in optimizer.param_groups]


def test_linear_decay_scales_each_group_from_its_own_rate_over_the_larger_budget_fraction() -> None:
    optimizer = _two_groups()
    schedule = LinearDecay(optimizer)
    schedule.before_step(Progress(step=25, elapsed=10.0, max_steps=100, max_seconds=100.0))
    assert _rates(optimizer) == pytest.approx([0.0075, 0.00075])
    schedule.before_step(Progress(step=30, elapsed=60.0, max_steps=100, max_seconds=100.0))  # time runs out first
    assert _rates(optimizer) == pytest.approx([0.004, 0.0004])
    schedule.before_step(Progress(step=120, elapsed=0.0, max_steps=100))
    assert _rates(optimizer) == [0.0, 0.0]


def test_plateau_decay_keeps_the_ratio_between_groups() -> None:
    optimizer = _two_groups()
    schedule = PlateauDecay(optimizer, decay=0.5, patience=1)
    for stalled in (0, 1, 2, 0, 1, 2, 3, 4):
        schedule.after_evaluation(stalled)
    assert _rates(optimizer) == pytest.approx([0.01 / 8, 0.001 / 8])


def test_warmup_climbs_linearly_to_each_groups_rate_then_the_schedule_takes_over() -> None:
    optimizer = _two_groups()
    schedule = InverseSquareRoot(optimizer, warmup_steps=4)
    seen = []
    for step in range(16):
        schedule.before_step(Progress(step=step, elapsed=0.0))
        seen.append(_rates(optimizer)[0])
    assert seen[:4] == pytest.approx([0.0025, 0.005, 0.0075, 0.01])
    assert seen[15] == pytest.approx(0.01 * math.sqrt(4 / 16))
    assert _rates(optimizer)[1] == pytest.approx(seen[15] / 10)


def test_cosine_decay_falls_along_half_a_cosine_after_its_warmup() -> None:
    optimizer = _two_groups()
    schedule = CosineDecay(optimizer, warmup_steps=2)
    schedule.before_step(Progress(step=0, elapsed=0.0, max_steps=100))
    assert _rates(optimizer)[0] == pytest.approx(0.005 * 0.5 * (1 + math.cos(0.0)))
    schedule.before_step(Progress(step=50, elapsed=0.0, max_steps=100))
    assert _rates(optimizer) == pytest.approx([0.005, 0.0005])
    schedule.before_step(Progress(step=100, elapsed=0.0, max_steps=100))
    assert _rates(optimizer) == pytest.approx([0.0, 0.0])


def test_plateau_decay_ignores_evaluations_during_its_warmup() -> None:
    optimizer = _two_groups()
    schedule = PlateauDecay(optimizer, decay=0.5, patience=0, warmup_steps=10)
    schedule.before_step(Progress(step=4, elapsed=0.0))
    schedule.after_evaluation(1)
    assert _rates(optimizer) == pytest.approx([0.005, 0.0005])
    schedule.before_step(Progress(step=10, elapsed=0.0))
    schedule.after_evaluation(1)
    assert _rates(optimizer) == pytest.approx([0.005, 0.0005])


def test_a_transformer_warms_up_by_default_and_an_rnn_does_not() -> None:
    """The model kind carries its default warm-up; train.warmup_steps, when set, wins."""
    transformer = Seq2Seq(ModelConfig(arch="transformer", hidden_size=8, heads=2, feedforward_size=8), 10, 10)
    assert transformer.warmup_steps == TransformerLanguageModel.warmup_steps == WARMUP_STEPS > 0
    assert Seq2Seq(ModelConfig(hidden_size=8, embedding_size=4), 10, 10).warmup_steps == 0
    assert schedule_of(Config(), _two_groups(), transformer.warmup_steps).warmup_steps == WARMUP_STEPS
    assert schedule_of(apply_overrides(Config(), ["train.warmup_steps=0"]), _two_groups(),
                       WARMUP_STEPS).warmup_steps == 0
    assert isinstance(schedule_of(apply_overrides(Config(), ["train.lr_schedule=inverse_sqrt"]), _two_groups()),
                      InverseSquareRoot)
