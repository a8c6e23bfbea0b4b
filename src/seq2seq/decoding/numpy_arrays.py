"""`Arrays` on numpy, for the torch-free runtime: numpy's own namespace is the standard's (2024.12); float32 stays
float32, ties keep the lower index first."""

from __future__ import annotations

import numpy as np

from seq2seq.decoding.arrays import Array, Arrays


class NumpyArrays(Arrays):
    """The search's array operations on numpy arrays."""

    def __init__(self) -> None:
        super().__init__(np, "cpu")

    def top(self, array: Array, count: int) -> tuple[Array, Array]:
        if count < array.shape[-1]:
            candidates = np.argpartition(-array, count - 1, axis=-1)[..., :count]  # unordered
            order = np.argsort(-np.take_along_axis(array, candidates, axis=-1), axis=-1, kind="stable")
            index = np.take_along_axis(candidates, order, axis=-1)
        else:
            index = np.argsort(-array, axis=-1, kind="stable")
        return np.take_along_axis(array, index, axis=-1), index

    def random_source(self, seed: int | None) -> np.random.Generator:
        return np.random.default_rng(seed)

    def exponential(self, shape: tuple[int, ...], source: np.random.Generator) -> Array:
        return source.standard_exponential(shape, dtype=np.float32)
