"""Output projection and cross-entropy fused, chunk by chunk, so the (N, V) logits never leave the cache.

With a large vocabulary the logits are the biggest tensors of a step, and every pass over them is memory-bound.
Here they are projected once, in the compute dtype, and each chunk of rows gets its bias and becomes
exp(logit - row max) in place while in cache: the only pass of the step over the logits besides the matrix
products. The softmax normaliser, the gradient's scale, the label-smoothing floor and the bias gradient never touch
the (N, V) buffer: they are folded into the small (N, H) and (V, H) operands and results of the backward products.
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
        exps = features @ weight_c.t()  # (N, V) logits without bias, in the compute dtype
        target_logits, peaks, totals, mean_logits = [], [], [], []
        for rows, row_targets in zip(torch.split(exps, CHUNK_ROWS), torch.split(targets, CHUNK_ROWS), strict=True):
            rows.add_(bias_c)
            target_logits.append(rows.gather(1, row_targets[:, None]).squeeze(1).float())
            if label_smoothing:
                mean_logits.append(rows.sum(dim=-1, dtype=torch.float32) / rows.size(1))
            peak = rows.amax(dim=-1, keepdim=True)
            totals.append(rows.sub_(peak).exp_().sum(dim=-1, dtype=torch.float32))
            peaks.append(peak.squeeze(1).float())
        total, target_logit = torch.cat(totals), torch.cat(target_logits)
        log_normalizer = torch.cat(peaks) + total.log()
        # loss = logsumexp - (1 - e) * target logit - e * mean logit
        losses = log_normalizer - (1.0 - label_smoothing) * target_logit  # (N,)
        if label_smoothing:
            losses -= label_smoothing * torch.cat(mean_logits)
        # the target's probability in fp32: its gradient p - 1 would lose most of its bits in bf16
        target_probabilities = (target_logit - log_normalizer).exp()
        ctx.save_for_backward(features, weight_c, targets, exps, total, target_probabilities)
        ctx.label_smoothing = label_smoothing
        ctx.master_dtype = weight.dtype
        return losses

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        features, weight_c, targets, exps, total, target_probabilities = ctx.saved_tensors
        smoothing, master = ctx.label_smoothing, ctx.master_dtype
        floor = smoothing / exps.size(1)  # the smoothed target puts e / V on every token
        # row r of the gradient is g_r * (exps_r / total_r - (1 - e) * onehot(t_r) - floor): the target's entry is
        # written into the buffer at the scale total_r, the rest is folded into the products' small operands
        rows = torch.arange(exps.size(0), device=exps.device)
        exps[rows, targets] = (total * (target_probabilities - (1.0 - smoothing))).to(exps.dtype)
        scale = (grad_output / total)[:, None]  # (N, 1)
        grad_features = (exps @ weight_c) * scale.to(exps.dtype)  # (N, H)
        # one product gives the weight's gradient and, through a column of scales, the bias's
        scaled = torch.cat([features * scale.to(features.dtype), scale.to(features.dtype)], dim=1)  # (N, H + 1)
        grad_weight_and_bias = exps.t() @ scaled  # (V, H + 1)
        grad_weight = grad_weight_and_bias[:, :-1].to(master, memory_format=torch.contiguous_format)
        grad_bias = grad_weight_and_bias[:, -1].to(master, memory_format=torch.contiguous_format)
        if smoothing:
            grad_features -= floor * grad_output[:, None] * weight_c.sum(0)
            grad_weight -= floor * (grad_output @ features.float())
            grad_bias -= floor * grad_output.sum()
        return grad_features, grad_weight, grad_bias, None, None


def projected_cross_entropy(features: Tensor, weight: Tensor, bias: Tensor, targets: Tensor,
                            label_smoothing: float = 0.0) -> Tensor:
    """Summed cross-entropy of `features @ weight.T + bias` (N, V) against targets (N,), without storing logits."""
    return token_cross_entropy(features, weight, bias, targets, label_smoothing).sum()


def token_cross_entropy(features: Tensor, weight: Tensor, bias: Tensor, targets: Tensor,
                        label_smoothing: float = 0.0) -> Tensor:
    """The cross-entropy of each row (N,) of `features @ weight.T + bias` (N, V) against targets (N,), without
    storing logits.

    Under autocast the products run in the autocast dtype, and so do the stored exponentials; their sums, the
    target's probability and the loss are always fp32.
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
