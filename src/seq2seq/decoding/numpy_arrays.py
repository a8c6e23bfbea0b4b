"""`Arrays` on numpy, for the torch-free runtime: float32 stays float32, ties keep the lower index first."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np

from seq2seq.decoding.arrays import Array


class NumpyArrays:
    """The search's array operations on numpy arrays."""

    int64, float32, bool = np.int64, np.float32, np.bool_

    def full(self, shape: tuple[int, ...], fill: float, dtype: Any) -> Array:
        return np.full(shape, fill, dtype=dtype)

    def arange(self, stop: int) -> Array:
        return np.arange(stop)

    def astype(self, array: Array, dtype: Any) -> Array:
        return array.astype(dtype)

    def where(self, condition: Array, chosen: Array | float, other: Array | float) -> Array:
        dtype = next(value.dtype for value in (other, chosen) if isinstance(value, np.ndarray))
        return np.where(condition, chosen, other).astype(dtype, copy=False)

    def concat(self, arrays: Sequence[Array], axis: int = 0) -> Array:
        return np.concatenate(arrays, axis=axis)

    def stack(self, arrays: Sequence[Array], axis: int = 0) -> Array:
        return np.stack(arrays, axis=axis)

    def sum(self, array: Array) -> Array:
        return array.sum(axis=-1)

    def cumsum(self, array: Array) -> Array:
        return array.cumsum(axis=-1)

    def argmax(self, array: Array) -> Array:
        return array.argmax(axis=-1)

    def top(self, array: Array, count: int) -> tuple[Array, Array]:
        if count < array.shape[-1]:
            candidates = np.argpartition(-array, count - 1, axis=-1)[..., :count]  # unordered
            order = np.argsort(-np.take_along_axis(array, candidates, axis=-1), axis=-1, kind="stable")
            index = np.take_along_axis(candidates, order, axis=-1)
        else:
            index = np.argsort(-array, axis=-1, kind="stable")
        return np.take_along_axis(array, index, axis=-1), index

    def take_along(self, array: Array, index: Array) -> Array:
        return np.take_along_axis(array, index, axis=-1)

    def log(self, array: Array) -> Array:
        return np.log(array)

    def softmax(self, array: Array) -> Array:
        return np.exp(self.log_softmax(array))

    def log_softmax(self, array: Array) -> Array:
        shifted = array - array.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))

    def logsumexp(self, array: Array, axis: int = -1) -> Array:
        top = array.max(axis=axis, keepdims=True)
        shift = np.where(np.isfinite(top), top, 0).astype(array.dtype)
        with np.errstate(divide="ignore"):
            total = np.log(np.exp(array - shift).sum(axis=axis))
        return (shift.squeeze(axis) + total).astype(array.dtype)

    def logaddexp(self, first: Array, second: Array) -> Array:
        return np.logaddexp(first, second)

    def random_source(self, seed: int | None) -> np.random.Generator:
        return np.random.default_rng(seed)

    def exponential(self, shape: tuple[int, ...], source: np.random.Generator) -> Array:
        return source.standard_exponential(shape, dtype=np.float32)

    def on_host(self, array: Array) -> Array:
        return array

    def no_grad(self) -> nullcontext[None]:
        return nullcontext()
