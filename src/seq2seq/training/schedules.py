"""Learning-rate schedules over any optimizer's parameter groups, each group scaled relative to its own rate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from seq2seq.config import TrainConfig


class Optimizer(Protocol):
    """What a schedule needs of an optimizer: torch.optim's `param_groups`, each with its `lr`."""

    param_groups: list[dict[str, Any]]


@dataclass(frozen=True)
class Progress:
    """How far training has come: updates and seconds done, and the budgets of each (None: no such budget)."""

    step: int
    elapsed: float
    max_steps: int | None = None
    max_seconds: float | None = None

    def fraction(self) -> float:
        """The larger fraction used of the step and time budgets (0 without budgets)."""
        return max(self.step / self.max_steps if self.max_steps else 0.0,
                   self.elapsed / self.max_seconds if self.max_seconds else 0.0)


class Schedule:
    """A learning-rate schedule: told of each coming update and of each evaluation, it may change the groups' rates.

    The base rates are the groups' rates when the schedule is made; a schedule sets each group's rate as a factor of
    its own base rate (`scale`) or of its current rate, so the ratios between groups hold. This one keeps the rates.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self.base_rates = [group["lr"] for group in optimizer.param_groups]

    def before_step(self, progress: Progress) -> None:
        """Called before each update."""

    def after_evaluation(self, evals_without_improvement: int) -> None:
        """Called after each dev evaluation, with the evaluations since the last new best (0: this one is)."""

    def scale(self, factor: float) -> None:
        """Set each group's learning rate to its base rate times factor."""
        for group, base in zip(self.optimizer.param_groups, self.base_rates, strict=True):
            group["lr"] = base * factor


class PlateauDecay(Schedule):
    """Multiply the learning rates by decay after each run of patience + 1 evaluations without a new best (when
    torch's ReduceLROnPlateau would, with threshold 0). The rates live in the optimizer, and its checkpoint."""

    def __init__(self, optimizer: Optimizer, decay: float, patience: int) -> None:
        super().__init__(optimizer)
        self.decay, self.patience = decay, patience

    def after_evaluation(self, evals_without_improvement: int) -> None:
        if evals_without_improvement and evals_without_improvement % (self.patience + 1) == 0:
            for group in self.optimizer.param_groups:
                group["lr"] *= self.decay


class LinearDecay(Schedule):
    """Learning rates falling linearly to zero over the step or time budget, whichever runs out first."""

    def before_step(self, progress: Progress) -> None:
        self.scale(max(0.0, 1.0 - progress.fraction()))


def schedule_of(train: TrainConfig, optimizer: Optimizer) -> Schedule:
    """The schedule train.lr_schedule names, over optimizer's current rates."""
    if train.lr_schedule == "linear":
        return LinearDecay(optimizer)
    return PlateauDecay(optimizer, train.lr_decay, train.lr_patience)
