"""Output projection and cross-entropy fused, chunk by chunk, so the (N, V) logits never leave the cache.

With a large vocabulary the logits are the biggest tensors of a step: materialising them, casting them to fp32,
taking log-softmax and building its gradient are memory-bound passes that cost more than the matrix products.
Here each chunk of rows is projected, reduced to its loss, and in backward turned into its gradient at once.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

CHUNK_ROWS = 32


class _ProjectedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, features: Tensor, weight: Tensor, bias: Tensor, targets: Tensor,
                label_smoothing: float) -> Tensor:
        weight_c, bias_c = weight.to(features.dtype), bias.to(features.dtype)
        logits = torch.addmm(bias_c, features, weight_c.t())  # (N, V) in the compute dtype
        smoothing_terms, log_normalizers = [], []  # loss = logsumexp - (1 - e) * target logit - e * mean logit
        for rows in _row_chunks(logits):
            chunk = rows.float()  # (C, V), small enough to stay in cache
            log_normalizers.append(torch.logsumexp(chunk, dim=-1))
            if label_smoothing:
                smoothing_terms.append(chunk.mean(dim=-1))
        target_logits = logits.gather(1, targets[:, None]).float().squeeze(1)
        losses = torch.cat(log_normalizers) - (1.0 - label_smoothing) * target_logits  # (N,)
        if label_smoothing:
            losses -= label_smoothing * torch.cat(smoothing_terms)
        ctx.save_for_backward(features, weight_c, targets, logits, torch.cat(log_normalizers))
        ctx.label_smoothing = label_smoothing
        ctx.master_dtype = weight.dtype
        return losses

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        features, weight_c, targets, logits, log_normalizers = ctx.saved_tensors
        smoothing = ctx.label_smoothing
        grad_bias = torch.zeros(logits.size(1), dtype=torch.float32, device=logits.device)
        start = 0
        for rows in _row_chunks(logits):  # the logits buffer becomes the gradient, chunk by chunk
            end = start + rows.size(0)
            grad = rows.float().sub_(log_normalizers[start:end, None]).exp_()  # softmax (C, V)
            if smoothing:
                grad -= smoothing / grad.size(1)
            grad.scatter_add_(1, targets[start:end, None], torch.full_like(grad[:, :1], smoothing - 1.0))
            grad *= grad_output[start:end, None]
            grad_bias += grad.sum(0)
            rows.copy_(grad)
            start = end
        grad_features = logits @ weight_c  # (N, H)
        grad_weight = logits.t() @ features  # (V, H)
        master = ctx.master_dtype
        return grad_features, grad_weight.to(master), grad_bias.to(master), None, None


def _row_chunks(matrix: Tensor) -> tuple[Tensor, ...]:
    return torch.split(matrix, CHUNK_ROWS)


def projected_cross_entropy(features: Tensor, weight: Tensor, bias: Tensor, targets: Tensor,
                            label_smoothing: float = 0.0) -> Tensor:
    """Summed cross-entropy of `features @ weight.T + bias` (N, V) against targets (N,), without storing logits."""
    return token_cross_entropy(features, weight, bias, targets, label_smoothing).sum()


def token_cross_entropy(features: Tensor, weight: Tensor, bias: Tensor, targets: Tensor,
                        label_smoothing: float = 0.0) -> Tensor:
    """The cross-entropy of each row (N,) of `features @ weight.T + bias` (N, V) against targets (N,), without
    storing logits.

    Under autocast the products run in the autocast dtype; the softmax and the loss are always fp32.
    """
    if torch.is_autocast_enabled(features.device.type):
        features = features.to(torch.get_autocast_dtype(features.device.type))
    with torch.autocast(features.device.type, enabled=False):
        return _ProjectedCrossEntropy.apply(features, weight, bias, targets, label_smoothing)


def coverage_loss(attention: Tensor, mask: Tensor) -> Tensor:
    """See et al.'s coverage loss sum_t sum_s min(a_ts, c_ts), c_t the weights of the steps before t, over the real
    target positions; attention (B, T, S), mask (B, T)."""
    covered = attention.cumsum(dim=1) - attention
    return torch.minimum(attention, covered).sum(dim=2)[mask].sum()
