"""Classifier: the RNN encoder, a pooling head (last state, mean, max or attention) and a linear layer over labels,
and, in runs trained with the removed `model.bag_of_words`, a linear model over the bag of words beside it."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call

from seq2seq.config import ModelConfig
from seq2seq.data.vocab import UNK_ID
from seq2seq.models.encoder import Encoder
from seq2seq.utils.device import rnn_autocast


class Pooled(NamedTuple):
    """One vector per text (B, H), and the attention pooling's weights over its tokens (B, S) (else None)."""

    features: Tensor
    weights: Tensor | None


class Pooling(nn.Module):
    """Encoder outputs -> one vector per text: the final state of the top layer (`last`: each direction's own last
    step), the mean or the maximum over the tokens, `concat`, those three side by side (ULMFiT's concat pooling,
    Howard and Ruder, 2018), or `attention`, a learned query over the outputs (Yang et al., 2016):
    softmax_s(q . tanh(W h_s + b)) weighs the outputs h_s. Padding never counts."""

    def __init__(self, kind: str, hidden_size: int) -> None:
        super().__init__()
        self.kind = kind
        self.size = 3 * hidden_size if kind == "concat" else hidden_size  # of the pooled vector
        self.projection = nn.Linear(hidden_size, hidden_size) if kind == "attention" else None
        self.query = nn.Linear(hidden_size, 1, bias=False) if kind == "attention" else None

    def forward(self, outputs: Tensor, mask: Tensor, last: Tensor) -> Pooled:
        """outputs (B, S, H), mask (B, S) true at real tokens, last (B, H) the top layer's final h."""
        if self.kind == "attention":
            return self._attend(outputs, mask)
        kinds = ("last", "mean", "max") if self.kind == "concat" else (self.kind,)
        return Pooled(torch.cat([_pool(kind, outputs, mask, last) for kind in kinds], dim=-1), None)  # (B, H or 3H)

    def _attend(self, outputs: Tensor, mask: Tensor) -> Pooled:
        assert self.projection is not None and self.query is not None
        scores = self.query(torch.tanh(self.projection(outputs))).squeeze(-1)  # (B, S)
        weights = torch.softmax(scores.float().masked_fill(~mask, float("-inf")), dim=-1)  # (B, S)
        return Pooled(torch.bmm(weights.to(outputs.dtype)[:, None, :], outputs).squeeze(1), weights)  # (B, H)


def _pool(kind: str, outputs: Tensor, mask: Tensor, last: Tensor) -> Tensor:
    """One vector (B, H) per text: its last state, or the mean or maximum of its outputs over its real tokens."""
    if kind == "last":
        return last
    if kind == "mean":
        total = outputs.masked_fill(~mask[:, :, None], 0.0).sum(dim=1)  # (B, H)
        return total / mask.sum(dim=1, keepdim=True).to(total.dtype)
    return outputs.masked_fill(~mask[:, :, None], float("-inf")).amax(dim=1)


class WordScores(nn.Module):
    """The bag of words of runs trained with `model.bag_of_words` (removed for new runs): a linear SVM's decision
    values over the text's TF-IDF vector, times a learned gain, added to the RNN's scores. Kept so that those runs
    load and classify as they did.

    The vector has, per distinct known token, (1 + ln count) times the token's inverse document frequency in the
    training texts, divided by its l2 norm; <unk> does not count. The SVM had been fitted to the very texts the RNN
    then trained on, so its in-sample scores left the RNN little to learn.
    """

    def __init__(self, vocab_size: int, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("idf", torch.ones(vocab_size))
        self.register_buffer("weight", torch.zeros(vocab_size, num_classes))
        self.register_buffer("bias", torch.zeros(num_classes))
        self.gain = nn.Parameter(torch.ones(()))

    def forward(self, src: Tensor, mask: Tensor) -> Tensor:
        """src (B, S) token ids, mask (B, S) true at real tokens -> gain times the SVM's decision values (B, C)."""
        mask = mask & (src != UNK_ID)
        same = (src[:, :, None] == src[:, None, :]) & mask[:, None, :]  # (B, S, S)
        counts = same.sum(dim=-1).clamp(min=1).float()  # (B, S): occurrences of each position's token
        per_token = ((1 + counts.log()) * self.idf[src]).masked_fill(~mask, 0.0)  # each distinct token's value ...
        share = per_token / counts  # ... split over its occurrences
        norm = (per_token * share).sum(dim=1, keepdim=True).sqrt().clamp(min=1e-12)
        decision = (self.weight[src] * share[:, :, None]).sum(dim=1) / norm + self.bias
        return self.gain * decision


class Classifier(nn.Module):
    """Reads a text with the RNN encoder (LSTM or GRU, layers, bidirectional), pools its outputs into one vector
    (`config.pooling`) and scores each of num_classes labels; with `config.bag_of_words` the scores of a linear
    model over the text's words (`WordScores`) are added."""

    def __init__(self, config: ModelConfig, vocab_size: int, num_classes: int) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(vocab_size, config.embedding_size, config.hidden_size, config.num_layers, config.rnn,
                               config.bidirectional, config.dropout)
        self.pooling = Pooling(config.pooling, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(self.pooling.size, num_classes)
        self.words = WordScores(vocab_size, num_classes) if config.bag_of_words else None

    def pool(self, src: Tensor, src_lengths: Tensor) -> Pooled:
        """One vector (B, H) per text of src (B, S), with the attention weights (B, S) of attention pooling.

        On CPU the RNN reads the padded batch (`read_padded`); elsewhere (cuDNN), and when traced for ONNX export
        (`read_padded`'s functional_call is not traceable), the encoder reads it packed: the same outputs."""
        lengths = src_lengths.to(src.device)
        if src.device.type == "cpu" and not torch.jit.is_tracing():
            with rnn_autocast(src.device):
                outputs = read_padded(self.encoder.rnn, self.encoder.embed(src), lengths)
        else:
            outputs = self.encoder(src, src_lengths)[0]  # (B, S, H)
        return self.pooling(outputs, token_mask(src, lengths), last_states(outputs, lengths, self.config.bidirectional))

    def scores(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        """Logits (B, C) over the classes, and the attention pooling's weights (B, S) (else None)."""
        pooled = self.pool(src, src_lengths)
        logits = self.output(self.dropout(pooled.features))
        if self.words is not None:
            logits = logits + self.words(src, token_mask(src, src_lengths.to(src.device))).to(logits.dtype)
        return logits, pooled.weights

    def forward(self, src: Tensor, src_lengths: Tensor) -> Tensor:
        """Logits (B, C) over the classes."""
        return self.scores(src, src_lengths)[0]


def token_mask(src: Tensor, lengths: Tensor) -> Tensor:
    """(B, S) true at the real tokens of src (B, S), whose rows have the given lengths (B,)."""
    return torch.arange(src.size(1), device=src.device)[None, :] < lengths[:, None]


def read_padded(rnn: nn.RNNBase, inputs: Tensor, lengths: Tensor) -> Tensor:
    """The outputs (B, S, H) of a batch-first GRU or LSTM (any layers, one or two directions) over padded inputs
    (B, S, E) whose rows have the given lengths (B,): at real steps those of a packed run, padding read last.

    Each direction reads the batch on its own, the backward one each text reversed within its length. On CPU this
    is several times faster than a packed run, whose backward pass fills a zero gradient of the whole batch for
    every time step.
    """
    layer_input = inputs
    for layer in range(rnn.num_layers):
        if layer:
            layer_input = nn.functional.dropout(layer_input, rnn.dropout, rnn.training)
        directions = [_read_direction(rnn, f"_l{layer}", layer_input)]
        if rnn.bidirectional:
            backward = _read_direction(rnn, f"_l{layer}_reverse", reverse_within(layer_input, lengths))
            directions.append(reverse_within(backward, lengths))
        layer_input = torch.cat(directions, dim=-1)
    return layer_input


def _read_direction(rnn: nn.RNNBase, suffix: str, inputs: Tensor) -> Tensor:
    """Outputs (B, S, H / directions) of one layer and direction of rnn (its weights named with suffix)."""
    single = type(rnn)(inputs.size(-1), rnn.hidden_size, bias=rnn.bias, batch_first=True, device="meta")
    weights = {name: getattr(rnn, name.removesuffix("_l0") + suffix) for name, _ in single.named_parameters()}
    return functional_call(single, weights, (inputs,))[0]


def reverse_within(values: Tensor, lengths: Tensor) -> Tensor:
    """values (B, S, D) with each row's first lengths[b] steps in reverse order; the padding after them stays."""
    steps = torch.arange(values.size(1), device=values.device)[None, :]
    index = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)  # (B, S)
    return values.gather(1, index[:, :, None].expand_as(values))


def last_states(outputs: Tensor, lengths: Tensor, bidirectional: bool) -> Tensor:
    """The final states (B, H) of the top layer in outputs (B, S, H): forward at each text's last real step,
    backward (the second half of H) at its first."""
    forward = outputs[torch.arange(outputs.size(0), device=outputs.device), lengths - 1]  # (B, H)
    if not bidirectional:
        return forward
    half = outputs.size(-1) // 2
    return torch.cat([forward[:, :half], outputs[:, 0, half:]], dim=-1)
