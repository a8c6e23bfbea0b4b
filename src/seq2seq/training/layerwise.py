"""Layer-wise fine-tuning (Howard and Ruder, 2018): discriminative learning rates and gradual unfreezing over a
model's layers, given bottom first."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from torch import Tensor

logger = logging.getLogger(__name__)


class Layers:
    """A model's parameters as layers, bottom first (the last is the head, trained from the start).

    Each layer's learning rate is the one above's divided by decay (`param_groups`, one optimizer group per layer:
    a schedule scales each group relative to its own rate, so the ratios hold). With unfreeze_every, only the head
    trains at first, and every unfreeze_every updates the next layer down joins it (`unfreeze`); a frozen layer's
    parameters do not require gradients.
    """

    def __init__(self, layers: Sequence[Sequence[Tensor]], decay: float, unfreeze_every: int) -> None:
        self.layers = [list(layer) for layer in layers]
        self.decay, self.unfreeze_every = decay, unfreeze_every
        self.trainable = 0  # layers counted from the top that train now; 0 until the first `unfreeze`

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """One optimizer group per layer, bottom first: the head at lr, each layer below at the rate above / decay."""
        top = len(self.layers) - 1
        return [{"params": layer, "lr": lr / self.decay ** (top - index)} for index, layer in enumerate(self.layers)]

    def unfreeze(self, step: int) -> None:
        """Before update step + 1: the head and, every unfreeze_every steps, one more layer from the top train; the
        layers below them are frozen."""
        count = len(self.layers)
        trainable = min(count, 1 + step // self.unfreeze_every) if self.unfreeze_every else count
        if trainable == self.trainable:
            return
        for index, layer in enumerate(self.layers):
            for parameter in layer:
                parameter.requires_grad_(index >= count - trainable)
        if self.trainable and self.unfreeze_every:
            logger.info("step %d: %d of %d layers train (top first)", step, trainable, count)
        self.trainable = trainable
