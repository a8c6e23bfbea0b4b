"""A decoder state as named tensors (torch or numpy), each declaring its batch axis and its other dynamic axes.

The declaration is what the search reorders by (`DecoderState.index_select`, one function for every model and both
backends) and what export names its graph inputs, outputs and dynamic axes after; the torch-free runtime reads it
back from the manifest. A layer-stacked RNN hidden part (L, B, H) has its rows on axis 1, the others on axis 0.
Imports neither torch nor numpy: it only indexes the arrays it holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Array = Any
"""A torch tensor or a numpy array."""

BATCH = "batch"  # the name of every state tensor's batch axis
SOURCE = "source"  # the source length: attention weights and coverage (B, S)


@dataclass(frozen=True)
class Axes:
    """Where a state tensor keeps its rows (batch), and its other axes whose size varies, by name (axis -> name)."""

    batch: int = 0
    others: Mapping[int, str] = field(default_factory=dict)

    def dynamic(self) -> dict[int, str]:
        """Every dynamic axis by name (the batch axis is `BATCH`): torch.onnx's dynamic_axes of the tensor."""
        return {self.batch: BATCH, **self.others}

    def to_dict(self) -> dict[str, str]:
        """As a manifest records it: {"1": "batch", ...}."""
        return {str(axis): name for axis, name in sorted(self.dynamic().items())}

    @classmethod
    def from_dict(cls, values: Mapping[str, str]) -> Axes:
        """The axes `to_dict` wrote."""
        axes = {int(axis): name for axis, name in values.items()}
        batch = next(axis for axis, name in axes.items() if name == BATCH)
        return cls(batch, {axis: name for axis, name in axes.items() if axis != batch})


ROWS = Axes()  # (B, ...)
LAYERS = Axes(batch=1)  # (L, B, H): an RNN's hidden part
SOURCE_ROWS = Axes(0, {1: SOURCE})  # (B, S)


@dataclass(frozen=True)
class DecoderState:
    """Named tensors of a batch, in order, and how each lies (`Axes`): what a step reads and returns."""

    tensors: Mapping[str, Array]
    axes: Mapping[str, Axes]

    def __getitem__(self, name: str) -> Array:
        return self.tensors[name]

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def get(self, name: str) -> Array | None:
        return self.tensors.get(name)

    @property
    def attention(self) -> Array | None:
        """The last step's attention weights (B, S), None for a model without attention (nothing to show)."""
        return self.tensors.get("attention")

    def index_select(self, index: Array) -> DecoderState:
        """Rows of the batch in the given order, each tensor along its own batch axis."""
        return DecoderState({name: value[_along(self.axes[name].batch, index)] for name, value in self.tensors.items()},
                            self.axes)


def declared(tensors: Mapping[str, tuple[Array, Axes]]) -> DecoderState:
    """A state from each tensor's value and axes, in the given order."""
    return DecoderState({name: value for name, (value, _) in tensors.items()},
                        {name: axes for name, (_, axes) in tensors.items()})


def _along(axis: int, index: Array) -> tuple[Any, ...]:
    """The subscript that picks index (N,) along axis, in the syntax torch and numpy share."""
    return (*(slice(None),) * axis, index)
