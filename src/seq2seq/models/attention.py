"""Attention over encoder outputs: Bahdanau (additive) and Luong (dot, general) scores, optionally with coverage."""

from __future__ import annotations

import torch
from torch import Tensor, nn

# Above this many elements in a (B, S, H) product, batched matrix products beat the elementwise form, which
# materialises the product: the long sources of summarization (bench/long_inputs.py measures both forms).
LARGE_PRODUCT = 1 << 23


class Attention(nn.Module):
    """Scores each source position against the decoder's query; returns the context and the weights.

    With coverage (See et al., 2017) the attention each position has received so far also enters its score: inside
    the additive score's tanh for Bahdanau, as a learned multiple added to the dot / general score.
    """

    def __init__(self, kind: str, size: int, coverage: bool = False) -> None:
        super().__init__()
        self.kind = kind
        if kind == "general":
            self.key_projection = nn.Linear(size, size, bias=False)
        elif kind == "bahdanau":
            self.query_projection = nn.Linear(size, size, bias=True)
            self.key_projection = nn.Linear(size, size, bias=False)
            self.score_vector = nn.Linear(size, 1, bias=False)
        if coverage:
            self.coverage_projection = nn.Linear(1, size if kind == "bahdanau" else 1, bias=False)

    def prepare_keys(self, outputs: Tensor) -> Tensor:
        """Work done once per source sentence, not once per target step: (B, S, H) -> keys (B, S, H).

        Luong's general score h_t^T W h_s is computed as h_t . (W h_s), so W is applied to the source only once.
        """
        return outputs if self.kind == "dot" else self.key_projection(outputs)

    def forward(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor,
                coverage: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """query (B, H), keys and values (B, S, H), mask (B, S) true at real tokens, coverage (B, S) the summed
        weights of earlier steps -> context (B, H), weights (B, S)."""
        covered = self.coverage_projection(coverage.unsqueeze(2).to(keys.dtype)) if coverage is not None else None
        if self.kind == "bahdanau":
            hidden = keys + self.query_projection(query).unsqueeze(1)  # (B, S, H)
            hidden = torch.tanh(hidden if covered is None else hidden + covered)
            scores = self.score_vector(hidden).squeeze(2)  # (B, S)
        else:
            scores = dot_scores(query, keys)
            scores = scores if covered is None else scores + covered.squeeze(2)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        return weighted_sum(weights, values), weights


def dot_scores(query: Tensor, keys: Tensor) -> Tensor:
    """query (B, H) . keys (B, S, H) -> (B, S); elementwise for short sources, where a batched product is slower."""
    if keys.numel() > LARGE_PRODUCT:
        return torch.bmm(keys, query.unsqueeze(2)).squeeze(2)
    return (keys * query.unsqueeze(1)).sum(dim=2)


def weighted_sum(weights: Tensor, values: Tensor) -> Tensor:
    """weights (B, S) x values (B, S, H) -> context (B, H), in the faster form for the product's size."""
    if values.numel() > LARGE_PRODUCT:
        return torch.bmm(weights.unsqueeze(1).to(values.dtype), values).squeeze(1)
    return (weights.unsqueeze(2) * values).sum(dim=1)
