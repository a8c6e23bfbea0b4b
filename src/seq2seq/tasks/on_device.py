"""The PyTorch runtime of the task facades: the model on one device, run in eval mode without gradients, under
autocast in the facade's precision."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import torch

from seq2seq.config import Config
from seq2seq.decoding.ensemble import members_of
from seq2seq.decoding.torch_arrays import TorchArrays
from seq2seq.tasks.facade import Facade
from seq2seq.utils.device import mixed_precision


class OnDevice(Facade):
    """A facade whose model (or ensemble) runs on `device` in `precision` (None: the one it was trained in)."""

    model: Any
    config: Config
    device: torch.device
    precision: str | None

    @property
    def _arrays(self) -> TorchArrays:
        return TorchArrays(self.device)

    def _computing(self) -> AbstractContextManager[Any]:
        return inference(self.model, self.precision or self.config.train.precision, self.device)


@contextmanager
def inference(model: Any, precision: str, device: torch.device) -> Iterator[None]:
    """Where a model (every member of an ensemble) answers: in eval mode, without gradients, under autocast."""
    for member in members_of(model):
        member.eval()
    with torch.no_grad(), mixed_precision(precision, device):
        yield
