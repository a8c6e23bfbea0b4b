"""What the task facades' front ends (translating, generating, transcribing, classifying) ask of the runtime that
holds the model, PyTorch (`on_device.OnDevice`) or ONNX Runtime (`onnx.model.Exported`): the arrays the model takes
and the context it runs in."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from seq2seq.decoding.arrays import Arrays


class Facade(ABC):
    """A model behind a front end: its inputs are made with `_arrays.padded` and it runs in `_computing()`."""

    @property
    @abstractmethod
    def _arrays(self) -> Arrays:
        """The arrays the model takes and returns, on its device; also the random source of sampling."""

    def _computing(self) -> AbstractContextManager[Any]:
        """The context the model runs in (none by default)."""
        return nullcontext()
