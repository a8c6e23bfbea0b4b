"""Which inputs share a batch when a model reads them (translating, transcribing, classifying): similar lengths
together, so that little of a batch is padding. Imports no torch."""

from __future__ import annotations

from collections.abc import Sequence


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices of the inputs in batches of batch_size, inputs of similar lengths together."""
    order = sorted(range(len(lengths)), key=lambda index: lengths[index])
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
