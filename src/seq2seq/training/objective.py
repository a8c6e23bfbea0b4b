"""All the trainer knows of a model: the function it minimises and the one it scores the dev set with."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from seq2seq.data.pairs import Batch

LossFunction = Callable[[nn.Module, Batch], tuple[Tensor, int]]
"""(model, batch) -> (the loss summed over the batch's real target tokens, how many there are); each model kind's
are in `seq2seq.models.objectives`."""

Scorer = Callable[[nn.Module], dict[str, float]]
"""model -> dev scores by metric name (the trainer's early stopping reads `train.metric` from them)."""
