"""Classifier: the RNN encoder, a pooling head (last state, mean, max or attention) and a linear layer over labels."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from seq2seq.config import ModelConfig
from seq2seq.encoder import Encoder


class Pooled(NamedTuple):
    """One vector per text (B, H), and the attention pooling's weights over its tokens (B, S) (else None)."""

    features: Tensor
    weights: Tensor | None


class Pooling(nn.Module):
    """Encoder outputs -> one vector per text: the final state of the top layer (`last`: each direction's own last
    step), the mean or the maximum over the tokens, or `attention`, a learned query over the outputs (Yang et al.,
    2016): softmax_s(q . tanh(W h_s + b)) weighs the outputs h_s. Padding never counts."""

    def __init__(self, kind: str, hidden_size: int) -> None:
        super().__init__()
        self.kind = kind
        self.projection = nn.Linear(hidden_size, hidden_size) if kind == "attention" else None
        self.query = nn.Linear(hidden_size, 1, bias=False) if kind == "attention" else None

    def forward(self, outputs: Tensor, mask: Tensor, final: tuple[Tensor, ...]) -> Pooled:
        """outputs (B, S, H), mask (B, S) true at real tokens, final state parts (L, B, H)."""
        if self.kind == "last":
            return Pooled(final[0][-1], None)  # h of the top layer (an LSTM's cell state is final[1])
        if self.kind == "mean":
            total = outputs.masked_fill(~mask[:, :, None], 0.0).sum(dim=1)  # (B, H)
            return Pooled(total / mask.sum(dim=1, keepdim=True).to(total.dtype), None)
        if self.kind == "max":
            return Pooled(outputs.masked_fill(~mask[:, :, None], float("-inf")).amax(dim=1), None)
        return self._attend(outputs, mask)

    def _attend(self, outputs: Tensor, mask: Tensor) -> Pooled:
        assert self.projection is not None and self.query is not None
        scores = self.query(torch.tanh(self.projection(outputs))).squeeze(-1)  # (B, S)
        weights = torch.softmax(scores.float().masked_fill(~mask, float("-inf")), dim=-1)  # (B, S)
        return Pooled(torch.bmm(weights.to(outputs.dtype)[:, None, :], outputs).squeeze(1), weights)  # (B, H)


class Classifier(nn.Module):
    """Reads a text with the RNN encoder (LSTM or GRU, layers, bidirectional), pools its outputs into one vector
    (`config.pooling`) and scores each of num_classes labels."""

    def __init__(self, config: ModelConfig, vocab_size: int, num_classes: int) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(vocab_size, config.embedding_size, config.hidden_size, config.num_layers, config.rnn,
                               config.bidirectional, config.dropout)
        self.pooling = Pooling(config.pooling, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.hidden_size, num_classes)

    def pool(self, src: Tensor, src_lengths: Tensor) -> Pooled:
        """One vector (B, H) per text of src (B, S), with the attention weights (B, S) of attention pooling."""
        outputs, final = self.encoder(src, src_lengths)  # (B, S, H)
        positions = torch.arange(src.size(1), device=src.device)
        return self.pooling(outputs, positions[None, :] < src_lengths.to(src.device)[:, None], final)

    def scores(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        """Logits (B, C) over the classes, and the attention pooling's weights (B, S) (else None)."""
        pooled = self.pool(src, src_lengths)
        return self.output(self.dropout(pooled.features)), pooled.weights

    def forward(self, src: Tensor, src_lengths: Tensor) -> Tensor:
        """Logits (B, C) over the classes."""
        return self.scores(src, src_lengths)[0]
