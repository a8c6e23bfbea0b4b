"""Schedules: each group's learning rate follows the schedule relative to its own, so the ratios between groups hold."""

from __future__ import annotations

import pytest
import torch

from seq2seq.training.optim import FusedAdam
from seq2seq.training.schedules import LinearDecay, PlateauDecay, Progress


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
