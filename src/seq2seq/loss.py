"""Output projection and cross-entropy fused, chunk by chunk, so the (N, V) logits never leave the cache.

With a large vocabulary the logits are the biggest tensors of a step: materialising them, casting them to fp32,
taking log-softmax and building its gradient are memory-bound passes that cost more than the matrix products.
Here the logits are projected once; each chunk of rows is then turned into its softmax and loss while in cache
(the only exponentials of the step), and in backward the stored softmax becomes the gradient in place.
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
        target_logits = logits.gather(1, targets[:, None]).float().squeeze(1)
        log_normalizers, mean_logits = [], []  # loss = logsumexp - (1 - e) * target logit - e * mean logit
        keep_softmax = any(ctx.needs_input_grad[:3])
        for rows in _row_chunks(logits):  # the logits buffer becomes the softmax, chunk by chunk
            chunk = rows.float()  # (C, V), small enough to stay in cache
            if label_smoothing:
                mean_logits.append(chunk.mean(dim=-1))
            peak = chunk.amax(dim=-1, keepdim=True)
            total = chunk.sub_(peak).exp_().sum(dim=-1, keepdim=True)
            log_normalizers.append((peak + total.log()).squeeze(1))
            if keep_softmax:
                rows.copy_(chunk.div_(total))
        log_normalizer = torch.cat(log_normalizers)
        losses = log_normalizer - (1.0 - label_smoothing) * target_logits  # (N,)
        if label_smoothing:
            losses -= label_smoothing * torch.cat(mean_logits)
        # the target's probability in fp32: its gradient p - 1 would lose most of its bits in a bf16 softmax
        ctx.save_for_backward(features, weight_c, targets, logits, (target_logits - log_normalizer).exp())
        ctx.label_smoothing = label_smoothing
        ctx.master_dtype = weight.dtype
        return losses

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        features, weight_c, targets, probabilities, target_probabilities = ctx.saved_tensors
        smoothing = ctx.label_smoothing
        floor = smoothing / probabilities.size(1)  # the smoothed target puts e / V on every token
        target_grads = (target_probabilities - (1.0 - smoothing) - floor)[:, None]
        grad_bias = torch.zeros(probabilities.size(1), dtype=torch.float32, device=probabilities.device)
        start = 0
        for rows in _row_chunks(probabilities):  # the softmax buffer becomes the gradient, chunk by chunk
            end = start + rows.size(0)
            grad = rows.float()  # (C, V)
            if smoothing:
                grad -= floor
            grad.scatter_(1, targets[start:end, None], target_grads[start:end])
            grad *= grad_output[start:end, None]
            grad_bias += grad.sum(0)
            rows.copy_(grad)
            start = end
        grad_features = probabilities @ weight_c  # (N, H)
        grad_weight = probabilities.t() @ features  # (V, H)
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
