"""A language model's output layer, features (..., H) -> scores of the next token (..., V), and its training loss.

`FullSoftmax` scores every token with one projection. `AdaptiveSoftmax` (Grave et al., 2017, "Efficient softmax
approximation for GPUs") splits the vocabulary, whose ids run from the most frequent token down, at its cutoffs: the
head scores the tokens before the first cutoff and one entry per tail cluster, each cluster's tokens are scored
through a projection that shrinks by DIVISION per cluster, and the training loss scores a cluster only at the
positions whose target falls in it. With a word vocabulary most targets are among the first few thousand tokens, so
training costs a fraction of the full softmax (generation and evaluation score every token, as before). Both return
scores that decoding treats as logits (the adaptive ones are log-probabilities: their softmax is the model's
distribution).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from seq2seq.errors import ConfigError
from seq2seq.models.loss import projected_cross_entropy

DIVISION = 4.0  # each tail cluster's projection is this many times narrower than the one before


class FullSoftmax(nn.Linear):
    """Logits of every token; the loss fuses projection and cross-entropy (`loss.projected_cross_entropy`)."""

    def loss(self, features: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Summed cross-entropy of targets (N,) given features (N, H)."""
        return projected_cross_entropy(features, self.weight, self.bias, targets, label_smoothing)


class AdaptiveSoftmax(nn.Module):
    """Log-probabilities of every token from a head and tail clusters (torch's AdaptiveLogSoftmaxWithLoss), in fp32
    whatever the autocast: on CPU autocast leaves its log-softmaxes in bf16, which its fp32 buffers refuse."""

    def __init__(self, hidden_size: int, vocab_size: int, cutoffs: Sequence[int]) -> None:
        super().__init__()
        self.out_features = vocab_size
        self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(hidden_size, vocab_size, list(cutoffs), div_value=DIVISION)

    def forward(self, features: Tensor) -> Tensor:
        """Log-probabilities (..., V) of features (..., H)."""
        with torch.autocast(features.device.type, enabled=False):
            flat = features.reshape(-1, features.size(-1)).float()
            return self.adaptive.log_prob(flat).reshape(*features.shape[:-1], self.out_features)

    def loss(self, features: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Summed cross-entropy of targets (N,) given features (N, H); there is no full distribution to smooth."""
        if label_smoothing:
            raise ConfigError("model.adaptive_softmax has no full distribution to smooth: train.label_smoothing=0")
        with torch.autocast(features.device.type, enabled=False):
            return -self.adaptive(features.float(), targets).output.sum()


def check_cutoffs(cutoffs: Sequence[int], hidden_size: int, vocab_size: int | None = None) -> None:
    """A one-line ConfigError unless the cutoffs rise strictly from 1 (to below vocab_size, when known) and the last
    cluster's projection has a size."""
    where = f"model.adaptive_softmax={list(cutoffs)}"
    if list(cutoffs) != sorted(set(cutoffs)) or cutoffs[0] < 1:
        raise ConfigError(f"{where}: the cutoffs must rise strictly from 1")
    if vocab_size is not None and cutoffs[-1] >= vocab_size:
        raise ConfigError(f"{where}: the cutoffs must stay below the vocabulary's {vocab_size} tokens")
    if hidden_size < DIVISION ** len(cutoffs):
        raise ConfigError(f"{where}: {len(cutoffs)} tail clusters need model.hidden_size of at least "
                          f"{DIVISION ** len(cutoffs):.0f} (each projects to a {DIVISION:.0f}th of the one before)")


def output_layer(hidden_size: int, vocab_size: int, cutoffs: Sequence[int]) -> FullSoftmax | AdaptiveSoftmax:
    """The full softmax, or with cutoffs (`model.adaptive_softmax`) the adaptive one (`check_cutoffs`)."""
    if not cutoffs:
        return FullSoftmax(hidden_size, vocab_size)
    check_cutoffs(cutoffs, hidden_size, vocab_size)
    return AdaptiveSoftmax(hidden_size, vocab_size, cutoffs)
