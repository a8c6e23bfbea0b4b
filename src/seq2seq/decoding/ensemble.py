"""Ensembles: models that share their vocabularies decode as one, each token chosen from the mean of their
next-token probabilities. One class for PyTorch models and exported ones: the arrays their steps return pick the
operations (`arrays.namespace`), so this module imports no torch."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from seq2seq.decoding.arrays import Array, namespace


@dataclass(frozen=True)
class Parts:
    """Each member's encoder memory or decoder state, in member order: what the search reorders."""

    parts: tuple[Any, ...]

    def index_select(self, index: Array) -> Parts:
        """Rows of the batch in the given order, in every member's part."""
        return Parts(tuple(part.index_select(index) for part in self.parts))

    @property
    def attention(self) -> Array | None:
        """The members' last attention weights (B, S), averaged; None unless every member attends."""
        weights = [part.attention for part in self.parts if part.attention is not None]
        return sum(weights[1:], weights[0]) / len(weights) if len(weights) == len(self.parts) else None


class Ensemble:
    """Several models with the `encode / init_state / step` interface as one: its step returns the log of the mean
    of the members' next-token probabilities (B, V), so every decoding strategy runs on it unchanged."""

    def __init__(self, members: Sequence[Any]) -> None:
        self.members = tuple(members)

    def encode(self, src: Array, src_lengths: Array) -> Parts:
        return Parts(tuple(member.encode(src, src_lengths) for member in self.members))

    def init_state(self, memory: Parts) -> Parts:
        return Parts(tuple(member.init_state(part) for member, part in zip(self.members, memory.parts, strict=True)))

    def step(self, tokens: Array, state: Parts, memory: Parts) -> tuple[Array, Parts]:
        """Feed one token per row (B,) to every member; the mean's log-probabilities (B, V) and the new state."""
        outputs = [member.step(tokens, part, member_memory)
                   for member, part, member_memory in zip(self.members, state.parts, memory.parts, strict=True)]
        arrays = namespace(outputs[0][0])
        log_probs = arrays.stack([arrays.log_softmax(arrays.astype(logits, arrays.float32)) for logits, _ in outputs])
        return arrays.logsumexp(log_probs, axis=0) - math.log(len(outputs)), Parts(tuple(part for _, part in outputs))


def members_of(model: Any) -> tuple[Any, ...]:
    """An ensemble's members, or the one model."""
    return model.members if isinstance(model, Ensemble) else (model,)
