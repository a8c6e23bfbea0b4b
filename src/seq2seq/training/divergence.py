"""Non-finite training steps: each is skipped with a warning, a run of them stops training, and no checkpoint is
ever written with NaN or infinite weights."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from torch import Tensor

from seq2seq.errors import TrainingError

logger = logging.getLogger(__name__)

NON_FINITE_LIMIT = 5
"""Non-finite steps in a row that stop training."""


class NonFiniteSteps:
    """Counts the steps in a row whose loss or gradient is not finite."""

    def __init__(self, limit: int = NON_FINITE_LIMIT) -> None:
        self.limit = limit
        self.in_row = 0

    def update_allowed(self, gradient_norm: float, step: int) -> bool:
        """Whether step (numbered from 1) may update the weights: its gradient norm is finite (a NaN or infinite
        loss gives a non-finite norm). A non-finite one is skipped with a warning; `limit` in a row raise
        TrainingError."""
        if math.isfinite(gradient_norm):
            self.in_row = 0
            return True
        self.in_row += 1
        logger.warning("step %d: the loss or its gradient is %s; the update is skipped", step, gradient_norm)
        if self.in_row >= self.limit:
            raise TrainingError(f"training diverged: the loss was not finite for {self.in_row} steps in a row (up to "
                                f"step {step}); try a lower train.lr or train.clip_norm, or train.precision=fp32")
        return False


def check_finite(tensors: dict[str, Tensor], path: str | Path) -> None:
    """Raise TrainingError, naming the checkpoint and a tensor, when a floating-point tensor holds NaN or inf."""
    bad = [name for name, tensor in tensors.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if bad:
        raise TrainingError(f"{path}: not written: {len(bad)} tensors hold NaN or inf ({bad[0]} first); the weights "
                            "diverged (try a lower train.lr)")
