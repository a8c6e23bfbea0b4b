"""The array operations of the search (`search.py`): the Python array API standard (numpy's own namespace,
array-api-compat's for torch) and the few operations it lacks, one small backend per library.

The search calls the standard's functions (`where`, `concat`, `stack`, `sum`, `cumulative_sum`, `argmax`,
`take_along_axis`, `log`, `logaddexp`, ...) on an `Arrays`, which makes new arrays on one device, and relies on the
syntax both libraries share: arithmetic, comparisons, `& | ~`, slicing and integer or boolean indexing, assignment
through an index, `.shape`, `.reshape`, `.tolist()`, and `.all()` and `.max()` of a whole array. `namespace(array)`
picks an array's backend; the numpy one imports no torch. `Arrays.padded` makes a model's input from rows of
different lengths, for every facade's front end.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from types import ModuleType
from typing import Any

import numpy as np

Array = Any
"""A torch tensor or a numpy array."""


class Arrays(ABC):
    """One library's array API namespace, with its new arrays made on one device; a backend adds `top`,
    `random_source` and `exponential`, and may replace the generic operations below with faster ones of its own."""

    def __init__(self, standard: ModuleType, device: Any) -> None:
        self.standard, self.device = standard, device
        self.int64, self.float32, self.bool = standard.int64, standard.float32, standard.bool

    def __getattr__(self, name: str) -> Any:
        """The standard's function of that name."""
        standard = self.__dict__.get("standard")
        if standard is None or name.startswith("__"):  # not set up yet (a copy), or Python's own protocols
            raise AttributeError(name)
        return getattr(standard, name)

    def full(self, shape: tuple[int, ...], fill: float, dtype: Any) -> Array:
        return self.standard.full(shape, fill, dtype=dtype, device=self.device)

    def arange(self, stop: int) -> Array:
        return self.standard.arange(stop, device=self.device)

    def astype(self, array: Array, dtype: Any) -> Array:
        """The array as dtype on this device: itself when it already is."""
        return self.standard.astype(array, dtype, copy=False, device=self.device)

    def padded(self, rows: Sequence[Any], fill: float, dtype: Any) -> tuple[Array, Array]:
        """Rows of different lengths (lists of ids, or frames (T, F)) as one array (B, S, ...) of dtype, padded at
        the end with fill, and their lengths (B,): a model's src and src_lengths."""
        xp = self.standard
        parts = [xp.asarray(row, dtype=dtype) for row in rows]  # in host memory: one copy to the device at the end
        lengths = [part.shape[0] for part in parts]
        batch = xp.full((len(parts), max(lengths), *parts[0].shape[1:]), fill, dtype=dtype)
        for index, part in enumerate(parts):
            batch[index, :lengths[index]] = part
        return xp.asarray(batch, device=self.device), xp.asarray(lengths, dtype=self.int64, device=self.device)

    def log_softmax(self, array: Array) -> Array:
        """Over the last axis."""
        shifted = array - self.standard.max(array, axis=-1, keepdims=True)
        return shifted - self.standard.log(self.standard.sum(self.standard.exp(shifted), axis=-1, keepdims=True))

    def softmax(self, array: Array) -> Array:
        return self.standard.exp(self.log_softmax(array))

    def logsumexp(self, array: Array, axis: int = -1) -> Array:
        """log(sum(exp(array))) along axis, -inf where every value is -inf."""
        xp = self.standard
        top = xp.max(array, axis=axis, keepdims=True)
        shift = xp.where(xp.isfinite(top), top, 0.0)
        with np.errstate(divide="ignore"):  # log(0) = -inf is meant (numpy warns)
            return xp.squeeze(shift, axis=axis) + xp.log(xp.sum(xp.exp(array - shift), axis=axis))

    @abstractmethod
    def top(self, array: Array, count: int) -> tuple[Array, Array]:
        """The count largest values over the last axis, largest first, and their indices."""

    @abstractmethod
    def random_source(self, seed: int | None) -> Any:
        """A generator seeded with seed; without one, the library's usual source of fresh draws."""

    @abstractmethod
    def exponential(self, shape: tuple[int, ...], source: Any) -> Array:
        """float32 draws of Exp(1)."""

    def on_host(self, array: Array) -> Array:
        """The array in host memory."""
        return array

    def no_grad(self) -> AbstractContextManager[Any]:
        """Where the search runs the model: without recording gradients."""
        return nullcontext()


def namespace(array: Array) -> Arrays:
    """The backend of a numpy array or a torch tensor (torch is imported only for a tensor)."""
    if isinstance(array, np.ndarray):
        from seq2seq.decoding.numpy_arrays import NumpyArrays
        return NumpyArrays()
    from seq2seq.decoding.torch_arrays import TorchArrays
    return TorchArrays(array.device)
