"""`Arrays` on torch tensors of one device, for PyTorch models: the fused kernels where the standard's composition
would make several passes."""

from __future__ import annotations

import array_api_compat.torch
import torch

from seq2seq.decoding.arrays import Array, Arrays


class TorchArrays(Arrays):
    """The search's array operations on tensors; new tensors are made on device."""

    def __init__(self, device: torch.device) -> None:
        super().__init__(array_api_compat.torch, device)

    def top(self, array: Array, count: int) -> tuple[Array, Array]:
        if count < array.shape[-1]:
            return array.topk(count, dim=-1)
        return array.sort(dim=-1, descending=True)

    def take_along_axis(self, array: Array, index: Array, axis: int = -1) -> Array:
        return array.gather(axis, index)  # the search's indices are never negative

    def log_softmax(self, array: Array) -> Array:
        return array.log_softmax(dim=-1)

    def softmax(self, array: Array) -> Array:
        return array.softmax(dim=-1)

    def logsumexp(self, array: Array, axis: int = -1) -> Array:
        return array.logsumexp(dim=axis)

    def random_source(self, seed: int | None) -> torch.Generator | None:
        return None if seed is None else torch.Generator(device=self.device).manual_seed(seed)

    def exponential(self, shape: tuple[int, ...], source: torch.Generator | None) -> Array:
        return torch.empty(shape, device=self.device).exponential_(generator=source)

    def on_host(self, array: Array) -> Array:
        return array.cpu()

    def no_grad(self) -> torch.no_grad:
        return torch.no_grad()
