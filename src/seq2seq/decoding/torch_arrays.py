"""`Arrays` on torch tensors of one device, for PyTorch models: the tensor operations the search always used."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from seq2seq.decoding.arrays import Array


@dataclass(frozen=True)
class TorchArrays:
    """The search's array operations on tensors; new tensors are made on device."""

    device: torch.device
    int64, float32, bool = torch.int64, torch.float32, torch.bool

    def full(self, shape: tuple[int, ...], fill: float, dtype: Any) -> Array:
        return torch.full(shape, fill, dtype=dtype, device=self.device)

    def arange(self, stop: int) -> Array:
        return torch.arange(stop, device=self.device)

    def astype(self, array: Array, dtype: Any) -> Array:
        return array.to(self.device, dtype)

    def where(self, condition: Array, chosen: Array | float, other: Array | float) -> Array:
        if isinstance(chosen, float | int):  # masked_fill: no broadcast copy of the filler
            return other.masked_fill(condition, chosen)
        return torch.where(condition, chosen, other)

    def concat(self, arrays: Sequence[Array], axis: int = 0) -> Array:
        return torch.cat(list(arrays), dim=axis)

    def stack(self, arrays: Sequence[Array], axis: int = 0) -> Array:
        return torch.stack(list(arrays), dim=axis)

    def sum(self, array: Array) -> Array:
        return array.sum(dim=-1)

    def cumsum(self, array: Array) -> Array:
        return array.cumsum(dim=-1)

    def argmax(self, array: Array) -> Array:
        return array.argmax(dim=-1)

    def top(self, array: Array, count: int) -> tuple[Array, Array]:
        if count < array.shape[-1]:
            return array.topk(count, dim=-1)
        return array.sort(dim=-1, descending=True)

    def take_along(self, array: Array, index: Array) -> Array:
        return array.gather(-1, index)

    def log(self, array: Array) -> Array:
        return array.log()

    def softmax(self, array: Array) -> Array:
        return array.softmax(dim=-1)

    def log_softmax(self, array: Array) -> Array:
        return array.log_softmax(dim=-1)

    def logsumexp(self, array: Array, axis: int = -1) -> Array:
        return array.logsumexp(dim=axis)

    def logaddexp(self, first: Array, second: Array) -> Array:
        return torch.logaddexp(first, second)

    def random_source(self, seed: int | None) -> torch.Generator | None:
        return None if seed is None else torch.Generator(device=self.device).manual_seed(seed)

    def exponential(self, shape: tuple[int, ...], source: torch.Generator | None) -> Array:
        return torch.empty(shape, device=self.device).exponential_(generator=source)

    def on_host(self, array: Array) -> Array:
        return array.cpu()

    def no_grad(self) -> torch.no_grad:
        return torch.no_grad()
