"""The array operations the search needs beyond what numpy arrays and torch tensors already share, one backend each.

The search (`search.py`) is written once. It uses the syntax both libraries share (arithmetic, comparisons, `& | ~`,
slicing and integer or boolean indexing, assignment through an index, `.shape`, `.reshape`, `.tolist()`, and
`.all()` and `.max()` of a whole array) and, for the rest, the operations of `Arrays` below, all over the last axis
unless an axis is given. `namespace(array)` picks the backend of an array; the numpy one imports no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

Array = Any
"""A torch tensor or a numpy array."""


class Arrays(Protocol):
    """One library's array operations; dtypes are the library's own."""

    int64: Any
    float32: Any
    bool: Any

    def full(self, shape: tuple[int, ...], fill: float, dtype: Any) -> Array: ...

    def arange(self, stop: int) -> Array: ...

    def astype(self, array: Array, dtype: Any) -> Array:
        """The array as dtype, on this backend's device."""
        ...

    def where(self, condition: Array, chosen: Array | float, other: Array | float) -> Array: ...

    def concat(self, arrays: Sequence[Array], axis: int = 0) -> Array: ...

    def stack(self, arrays: Sequence[Array], axis: int = 0) -> Array: ...

    def sum(self, array: Array) -> Array: ...

    def cumsum(self, array: Array) -> Array: ...

    def argmax(self, array: Array) -> Array: ...

    def top(self, array: Array, count: int) -> tuple[Array, Array]:
        """The count largest values, largest first, and their indices."""
        ...

    def take_along(self, array: Array, index: Array) -> Array: ...

    def log(self, array: Array) -> Array: ...

    def softmax(self, array: Array) -> Array: ...

    def log_softmax(self, array: Array) -> Array: ...

    def logsumexp(self, array: Array, axis: int = -1) -> Array:
        """log(sum(exp(array))) along axis, -inf where every value is -inf."""
        ...

    def logaddexp(self, first: Array, second: Array) -> Array:
        """log(exp(first) + exp(second)) elementwise, -inf where both are -inf."""
        ...

    def random_source(self, seed: int | None) -> Any:
        """A generator seeded with seed; without one, the library's usual source of fresh draws."""
        ...

    def exponential(self, shape: tuple[int, ...], source: Any) -> Array:
        """float32 draws of Exp(1)."""
        ...

    def on_host(self, array: Array) -> Array: ...

    def no_grad(self) -> AbstractContextManager[Any]: ...


def namespace(array: Array) -> Arrays:
    """The backend of a numpy array or a torch tensor (torch is imported only for a tensor)."""
    if isinstance(array, np.ndarray):
        from seq2seq.decoding.numpy_arrays import NumpyArrays
        return NumpyArrays()
    from seq2seq.decoding.torch_arrays import TorchArrays
    return TorchArrays(array.device)
