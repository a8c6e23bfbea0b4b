"""Learning-rate schedules over any optimizer's parameter groups, each group scaled relative to its own rate."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from seq2seq.config import Config


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
    its own base rate (`scale`) or of its current rate, so the ratios between groups hold. Any schedule may start
    with a linear warm-up: over the first warmup_steps updates the rates climb from base / warmup_steps to base.
    This one keeps the rates after its warm-up.
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int = 0) -> None:
        self.optimizer = optimizer
        self.base_rates = [group["lr"] for group in optimizer.param_groups]
        self.warmup_steps = warmup_steps
        self.step = 0

    def before_step(self, progress: Progress) -> None:
        """Called before each update: sets the rates for it."""
        self.step = progress.step
        factor = self.factor(progress)
        if factor is not None:
            self.scale(self.warmup(progress.step) * factor)
        elif self.warmup_steps and progress.step <= self.warmup_steps:
            self.scale(self.warmup(progress.step))

    def factor(self, progress: Progress) -> float | None:
        """The base rates' factor after the warm-up at this point of training; None: the rates stay where they
        are (the schedule changes them after evaluations only)."""
        return None

    def warmup(self, step: int) -> float:
        """The warm-up's factor for the update after `step` updates: 1 once the warm-up is over."""
        return min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0

    def after_evaluation(self, evals_without_improvement: int) -> None:
        """Called after each dev evaluation, with the evaluations since the last new best (0: this one is)."""

    def scale(self, factor: float) -> None:
        """Set each group's learning rate to its base rate times factor."""
        for group, base in zip(self.optimizer.param_groups, self.base_rates, strict=True):
            group["lr"] = base * factor


class PlateauDecay(Schedule):
    """Multiply the learning rates by decay after each run of patience + 1 evaluations without a new best (when
    torch's ReduceLROnPlateau would, with threshold 0); evaluations during the warm-up change nothing. The rates live
    in the optimizer, and its checkpoint."""

    def __init__(self, optimizer: Optimizer, decay: float, patience: int, warmup_steps: int = 0) -> None:
        super().__init__(optimizer, warmup_steps)
        self.decay, self.patience = decay, patience

    def after_evaluation(self, evals_without_improvement: int) -> None:
        if self.step < self.warmup_steps:
            return
        if evals_without_improvement and evals_without_improvement % (self.patience + 1) == 0:
            for group in self.optimizer.param_groups:
                group["lr"] *= self.decay


class LinearDecay(Schedule):
    """Learning rates falling linearly to zero over the step or time budget, whichever runs out first."""

    def factor(self, progress: Progress) -> float:
        return max(0.0, 1.0 - progress.fraction())


class CosineDecay(Schedule):
    """Learning rates falling to zero along a half cosine over the step or time budget."""

    def factor(self, progress: Progress) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress.fraction())))


class InverseSquareRoot(Schedule):
    """After the warm-up, rates falling with the inverse square root of the updates done (Vaswani et al., 2017),
    from the base rates at the warm-up's end."""

    def factor(self, progress: Progress) -> float:
        return math.sqrt(max(1, self.warmup_steps) / max(progress.step + 1, self.warmup_steps, 1))


def schedule_of(config: Config, optimizer: Optimizer, default_warmup: int = 0) -> Schedule:
    """The schedule config.train.lr_schedule names over optimizer's current rates, after train.warmup_steps updates
    of warm-up (when unset: default_warmup, the model kind's)."""
    train = config.train
    warmup = default_warmup if train.warmup_steps is None else train.warmup_steps
    if train.lr_schedule == "plateau":
        return PlateauDecay(optimizer, train.lr_decay, train.lr_patience, warmup)
    kinds = {"linear": LinearDecay, "cosine": CosineDecay, "inverse_sqrt": InverseSquareRoot}
    return kinds[train.lr_schedule](optimizer, warmup)
