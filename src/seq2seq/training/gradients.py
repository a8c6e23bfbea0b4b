"""Gradients between backward pass and update: clipping, and embedding gradients that only looked-up rows touch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from types import TracebackType

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle


def clip_gradients(parameters: Iterable[Tensor], max_norm: float) -> float:
    """Scale the gradients down to total norm max_norm when above it; below, leave them untouched (unlike
    `nn.utils.clip_grad_norm_`, which multiplies every gradient by at most 1, a pass over all of them). Returns the
    norm before clipping (NaN or inf when a gradient is)."""
    parameters = list(parameters)
    norm = nn.utils.get_total_norm([p.grad for p in parameters if p.grad is not None])
    value = float(norm)
    if value > max_norm:
        nn.utils.clip_grads_with_norm_(parameters, max_norm, norm)
    return value


class EmbeddingRowGradients:
    """Embedding gradients that only the looked-up rows touch, for the time of a `with` block.

    A dense embedding gradient is a fresh (V, E) zero fill and a scatter per step: with large vocabularies the fill
    costs more than the lookups. Here embeddings emit sparse row gradients, which add into a dense gradient kept
    across steps (so that the fused Adam sees exactly the usual dense gradient), and `zero_grad` zeroes only the rows
    looked up since the last call. Embeddings whose weight is shared with another module keep dense gradients.
    `zero_grad` stands for the optimizer's: the model's other gradients are dropped (set to None), and outside the
    block all are. Leaving the block gives the embeddings back their `sparse` flag and gradient and removes the hooks.
    """

    def __init__(self, model: nn.Module) -> None:
        shared = Counter(id(p) for _, p in model.named_parameters(remove_duplicate=False))
        self._looked_up: dict[nn.Embedding, list[Tensor]] = {
            m: [] for m in model.modules() if isinstance(m, nn.Embedding) and shared[id(m.weight)] == 1}
        self.weight_ids = {id(m.weight) for m in self._looked_up}
        self._dense = [p for p in model.parameters() if id(p) not in self.weight_ids]
        self._saved: list[tuple[nn.Embedding, bool, Tensor | None, RemovableHandle]] = []

    def __enter__(self) -> EmbeddingRowGradients:
        for embedding in self._looked_up:
            handle = embedding.register_forward_hook(self._remember)
            self._saved.append((embedding, embedding.sparse, embedding.weight.grad, handle))
            embedding.sparse = True
            embedding.weight.grad = torch.zeros_like(embedding.weight)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        for embedding, sparse, grad, handle in self._saved:
            handle.remove()
            embedding.sparse, embedding.weight.grad = sparse, grad
        self._saved.clear()
        for ids in self._looked_up.values():
            ids.clear()

    def _remember(self, embedding: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        if torch.is_grad_enabled():
            self._looked_up[embedding].append(inputs[0].flatten())  # type: ignore[index]

    def zero_grad(self) -> None:
        """Drop the gradients, except, inside the block, the embeddings': zero their rows looked up since the last
        call."""
        for parameter in self._dense:
            parameter.grad = None
        for embedding, ids in self._looked_up.items():
            if not self._saved:
                embedding.weight.grad = None
            elif ids:
                embedding.weight.grad.index_fill_(0, torch.cat(ids), 0.0)
                ids.clear()
