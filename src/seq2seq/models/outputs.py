"""A language model's output layer, features (..., H) -> scores of the next token (..., V), and its training loss.

`FullSoftmax` scores every token with one projection. `AdaptiveSoftmax` (Grave et al., 2017, "Efficient softmax
approximation for GPUs") splits the vocabulary, whose ids run from the most frequent token down, at its cutoffs: the
head scores the tokens before the first cutoff and one entry per tail cluster, and a cluster's tokens are scored only
for the positions whose target falls there, through a projection that shrinks by DIVISION per cluster. With a word
vocabulary most targets are among the first few thousand tokens, so training costs a fraction of the full softmax.
Both return scores that decoding treats as logits (the adaptive ones are log-probabilities: their softmax is the
model's distribution).
"""

from __future__ import annotations

from collections.abc import Sequence

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
    """Log-probabilities of every token from a head and tail clusters (torch's AdaptiveLogSoftmaxWithLoss)."""

    def __init__(self, hidden_size: int, vocab_size: int, cutoffs: Sequence[int]) -> None:
        super().__init__()
        self.out_features = vocab_size
        self.clusters = nn.AdaptiveLogSoftmaxWithLoss(hidden_size, vocab_size, list(cutoffs), div_value=DIVISION)

    def forward(self, features: Tensor) -> Tensor:
        """Log-probabilities (..., V) of features (..., H)."""
        flat = features.reshape(-1, features.size(-1)).float()
        return self.clusters.log_prob(flat).reshape(*features.shape[:-1], self.out_features)

    def loss(self, features: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Summed cross-entropy of targets (N,) given features (N, H); label smoothing is refused by the config."""
        return -self.clusters(features.float(), targets).output.sum()


def output_layer(hidden_size: int, vocab_size: int, cutoffs: Sequence[int]) -> FullSoftmax | AdaptiveSoftmax:
    """The full softmax, or with cutoffs (`model.adaptive_softmax`) the adaptive one; a ConfigError when the cutoffs
    do not rise strictly inside the vocabulary, or when the last cluster's projection would have no size."""
    if not cutoffs:
        return FullSoftmax(hidden_size, vocab_size)
    if list(cutoffs) != sorted(set(cutoffs)) or cutoffs[0] < 1 or cutoffs[-1] >= vocab_size:
        raise ConfigError(f"model.adaptive_softmax={list(cutoffs)}: the cutoffs must rise strictly from 1 to below "
                          f"the vocabulary's {vocab_size} tokens")
    if hidden_size < DIVISION ** len(cutoffs):
        raise ConfigError(f"model.adaptive_softmax={list(cutoffs)}: {len(cutoffs)} tail clusters need model.hidden_size "
                          f"of at least {DIVISION ** len(cutoffs):.0f} (each projects to a {DIVISION:.0f}th of the one "
                          "before)")
    return AdaptiveSoftmax(hidden_size, vocab_size, cutoffs)
