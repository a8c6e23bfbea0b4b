"""Decoders of the three architectures, each with explicit state and a step() for one token."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor, nn

from seq2seq.config import ModelConfig
from seq2seq.data.vocab import PAD_ID
from seq2seq.models import kernels
from seq2seq.models.attention import Attention
from seq2seq.models.encoder import RNN_TYPES


@dataclass
class Memory:
    """What the encoder produced: outputs and attention keys (B, S, H), mask (B, S), final state parts (L, B, H).

    A copying model also keeps the source ids (B, S), some past the vocabulary (`Vocab.encode_extended`), and
    `width`, the size of its output distribution: the vocabulary and the batch's extension.
    """

    outputs: Tensor
    keys: Tensor
    mask: Tensor
    final: tuple[Tensor, ...]
    source: Tensor | None = None
    width: int = 0

    def index_select(self, index: Tensor) -> Memory:
        """Rows of the batch in the given order (beam search expands and reorders with this)."""
        return Memory(self.outputs.index_select(0, index), self.keys.index_select(0, index),
                      self.mask.index_select(0, index), tuple(p.index_select(1, index) for p in self.final),
                      None if self.source is None else self.source.index_select(0, index), self.width)


@dataclass
class DecoderState:
    """Recurrent state parts (L, B, H); the input-feeding vector, last attention weights and coverage where used."""

    hidden: tuple[Tensor, ...]
    feed: Tensor | None = None  # (B, H) attentional vector of the previous step
    attention: Tensor | None = None  # (B, S) weights of the last step
    coverage: Tensor | None = None  # (B, S) attention weights summed over the earlier steps

    def index_select(self, index: Tensor) -> DecoderState:
        """Rows of the batch in the given order."""
        hidden = tuple(part.index_select(1, index) for part in self.hidden)
        others = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "hidden"}
        return replace(self, hidden=hidden, **{k: v.index_select(0, index) for k, v in others.items()
                                               if v is not None})


class ContextDecoder(nn.Module):
    """Classic encoder-decoder: the encoder's final state initialises the decoder RNN (Sutskever et al.)."""

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
        self.rnn = RNN_TYPES[config.rnn](config.embedding_size, config.hidden_size, config.num_layers,
                                         batch_first=True, dropout=config.dropout if config.num_layers > 1 else 0)
        self.dropout = nn.Dropout(config.dropout)

    def init_state(self, memory: Memory) -> DecoderState:
        return DecoderState(memory.final)

    def forward(self, tgt_in: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState]:
        """Teacher-forced run over tgt_in (B, T) -> features (B, T, H)."""
        outputs, hidden = self.rnn(self.dropout(self.embedding(tgt_in)), _rnn_state(state.hidden))
        return self.dropout(outputs), DecoderState(_parts(hidden))

    def step(self, tokens: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState]:
        """One token per row (B,) -> features (B, H)."""
        features, state = self.forward(tokens.unsqueeze(1), state, memory)
        return features.squeeze(1), state


class RepeatDecoder(ContextDecoder):
    """Keras RepeatVector + TimeDistributed: the encoder's final vector is the input at every step.

    The decoder never sees the tokens it produced; its state starts at zero.
    """

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        super().__init__(config, vocab_size)
        self.embedding = None  # type: ignore[assignment]  # the input is the context vector, not tokens
        self.rnn = RNN_TYPES[config.rnn](config.hidden_size, config.hidden_size, config.num_layers,
                                         batch_first=True, dropout=config.dropout if config.num_layers > 1 else 0)

    def init_state(self, memory: Memory) -> DecoderState:
        zeros = torch.zeros_like(memory.final[0])
        return DecoderState(tuple(zeros for _ in memory.final), feed=memory.final[0][-1])

    def forward(self, tgt_in: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState]:
        assert state.feed is not None
        repeated = state.feed.unsqueeze(1).expand(-1, tgt_in.size(1), -1)  # (B, T, H)
        outputs, hidden = self.rnn(repeated, _rnn_state(state.hidden))
        return self.dropout(outputs), DecoderState(_parts(hidden), feed=state.feed)


class AttentionDecoder(nn.Module):
    """Luong-style decoder: RNN step, attention on its output, attentional vector fed to the next step.

    The first layer's gates take the embedded token, the fed vector and the layer's own state. The embeddings' part
    does not depend on earlier steps, so a teacher-forced run computes it for all steps in one product, outside the
    loop; each step adds only the products with the fed vector and the state.
    """

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        size = config.hidden_size
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
        cell = nn.LSTMCell if config.rnn == "lstm" else nn.GRUCell
        first_input = config.embedding_size + (size if config.input_feeding else 0)
        self.cells = nn.ModuleList(cell(first_input if i == 0 else size, size) for i in range(config.num_layers))
        self.attention = Attention(config.attention, size, config.coverage)
        self.coverage = config.coverage
        self.combine = nn.Linear(2 * size, size, bias=False)
        self.dropout = nn.Dropout(config.dropout)

    def init_state(self, memory: Memory) -> DecoderState:
        batch, size = memory.outputs.size(0), memory.outputs.size(2)
        feed = memory.outputs.new_zeros(batch, size)
        weights = memory.mask.new_zeros(memory.mask.shape).float()
        return DecoderState(memory.final, feed=feed, attention=weights, coverage=weights if self.coverage else None)

    def forward(self, tgt_in: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState]:
        """Teacher-forced run over tgt_in (B, T) -> features (B, T, H)."""
        embedding_gates, weights = self._embedding_gates(tgt_in), self._step_weights()  # (B, T, G)
        features = []
        for gates in embedding_gates.unbind(1):
            output, state = self._advance(gates, weights, state, memory)
            features.append(output)
        return torch.stack(features, dim=1), state

    def step(self, tokens: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState]:
        """One token per row (B,) -> features (B, H)."""
        return self._advance(self._embedding_gates(tokens), self._step_weights(), state, memory)

    def _embedding_gates(self, tokens: Tensor) -> Tensor:
        """The first layer's gate pre-activations from the embedded tokens (..., G)."""
        return kernels.input_gates(self.cells[0], self.dropout(self.embedding(tokens)))

    def _step_weights(self) -> kernels.StepWeights:
        """The first layer's per-step weights: for the fed vector (without input feeding: none) and the state."""
        return kernels.step_weights(self.cells[0], self.embedding.embedding_dim)

    def _advance(self, embedding_gates: Tensor, weights: kernels.StepWeights, state: DecoderState,
                 memory: Memory) -> tuple[Tensor, DecoderState]:
        """One step: the RNN layers, attention on the top one's output, and the attentional vector (B, H)."""
        assert state.feed is not None
        parts = kernels.precomputed_step(embedding_gates, state.feed, tuple(part[0] for part in state.hidden), weights)
        layers = [parts]
        for layer, cell in enumerate(self.cells[1:], start=1):
            parts = kernels.cell_step(cell, self.dropout(parts[0]), tuple(part[layer] for part in state.hidden))
            layers.append(parts)
        output = parts[0]
        context, attention = self.attention(output, memory.keys, memory.outputs, memory.mask, state.coverage)
        attentional = torch.tanh(self.combine(torch.cat([context, output], dim=-1)))  # (B, H)
        hidden = tuple(torch.stack(layer_parts) for layer_parts in zip(*layers, strict=True))  # parts (L, B, H)
        coverage = None if state.coverage is None else state.coverage + attention
        return self.dropout(attentional), DecoderState(hidden, feed=attentional, attention=attention,
                                                       coverage=coverage)


def _rnn_state(parts: tuple[Tensor, ...]) -> Tensor | tuple[Tensor, Tensor]:
    """nn.LSTM wants (h, c); nn.GRU wants h."""
    return (parts[0], parts[1]) if len(parts) == 2 else parts[0]


def _parts(hidden: Tensor | tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return hidden if isinstance(hidden, tuple) else (hidden,)


DECODERS: dict[str, type[nn.Module]] = {"context": ContextDecoder, "repeat": RepeatDecoder,
                                         "attention": AttentionDecoder}
