"""Decoders of the three architectures, each with explicit state and a step() for one token."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seq2seq.config import ModelConfig
from seq2seq.data.vocab import PAD_ID
from seq2seq.models import kernels
from seq2seq.models.attention import Attention
from seq2seq.models.encoder import RNN_TYPES
from seq2seq.models.state import LAYERS, ROWS, SOURCE_ROWS, Axes, DecoderState, declared


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


HIDDEN = "hidden"  # the recurrent state's parts (L, B, H) are hidden0 (h) and an LSTM's hidden1 (c)


def rnn_state(hidden: tuple[Tensor, ...], others: dict[str, tuple[Tensor, Axes]] | None = None) -> DecoderState:
    """A state of the RNN's parts (L, B, H), then the named others."""
    parts = {f"{HIDDEN}{index}": (part, LAYERS) for index, part in enumerate(hidden)}
    return declared({**parts, **(others or {})})


def hidden_of(state: DecoderState) -> tuple[Tensor, ...]:
    """The RNN's parts (L, B, H) of a state `rnn_state` made."""
    return tuple(value for name, value in state.tensors.items() if name.startswith(HIDDEN))


def hidden_axes(config: ModelConfig) -> dict[str, Axes]:
    """The declaration of an RNN's parts: two for an LSTM (h, c), one for a GRU."""
    return {f"{HIDDEN}{index}": LAYERS for index in range(2 if config.rnn == "lstm" else 1)}


class ContextDecoder(nn.Module):
    """Classic encoder-decoder: the encoder's final state initialises the decoder RNN (Sutskever et al.)."""

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
        self.rnn = RNN_TYPES[config.rnn](config.embedding_size, config.hidden_size, config.num_layers,
                                         batch_first=True, dropout=config.dropout if config.num_layers > 1 else 0)
        self.dropout = nn.Dropout(config.dropout)

    @staticmethod
    def state_axes(config: ModelConfig) -> dict[str, Axes]:
        """The declaration of the states this decoder makes for a model of config."""
        return hidden_axes(config)

    def init_state(self, memory: Memory) -> DecoderState:
        return rnn_state(memory.final)

    def memory_keys(self, outputs: Tensor) -> Tensor:
        """What the decoder reads of the encoder outputs (B, S, H) besides them: nothing more (no attention)."""
        return outputs

    def forward(self, tgt_in: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState]:
        """Teacher-forced run over tgt_in (B, T) -> features (B, T, H)."""
        outputs, hidden = self.rnn(self.dropout(self.embedding(tgt_in)), _rnn_state(hidden_of(state)))
        return self.dropout(outputs), rnn_state(_parts(hidden))

    def step(self, tokens: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState]:
        """One token per row (B,) -> features (B, H)."""
        features, state = self.forward(tokens.unsqueeze(1), state, memory)
        return features.squeeze(1), state


class RepeatDecoder(ContextDecoder):
    """Keras RepeatVector + TimeDistributed: the encoder's final vector is the input at every step.

    The decoder never sees the tokens it produced; its state starts at zero. The state also carries the repeated
    vector, `context` (B, H).
    """

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        super().__init__(config, vocab_size)
        self.embedding = None  # type: ignore[assignment]  # the input is the context vector, not tokens
        self.rnn = RNN_TYPES[config.rnn](config.hidden_size, config.hidden_size, config.num_layers,
                                         batch_first=True, dropout=config.dropout if config.num_layers > 1 else 0)

    @staticmethod
    def state_axes(config: ModelConfig) -> dict[str, Axes]:
        return {**hidden_axes(config), "context": ROWS}

    def init_state(self, memory: Memory) -> DecoderState:
        zeros = torch.zeros_like(memory.final[0])
        return rnn_state(tuple(zeros for _ in memory.final), {"context": (memory.final[0][-1], ROWS)})

    def forward(self, tgt_in: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState]:
        context = state["context"]  # (B, H)
        repeated = context.unsqueeze(1).expand(-1, tgt_in.size(1), -1)  # (B, T, H)
        outputs, hidden = self.rnn(repeated, _rnn_state(hidden_of(state)))
        return self.dropout(outputs), rnn_state(_parts(hidden), {"context": (context, ROWS)})


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

    @staticmethod
    def state_axes(config: ModelConfig) -> dict[str, Axes]:
        """The RNN's parts, the attentional vector fed to the next step (`feed`, (B, H)), the last step's attention
        weights (B, S) and with coverage their sum over the earlier steps (B, S)."""
        return {**hidden_axes(config), "feed": ROWS, "attention": SOURCE_ROWS,
                **({"coverage": SOURCE_ROWS} if config.coverage else {})}

    def memory_keys(self, outputs: Tensor) -> Tensor:
        """The attention's keys (B, S, H), made once per sentence from the encoder outputs."""
        return self.attention.prepare_keys(outputs)

    def init_state(self, memory: Memory) -> DecoderState:
        batch, size = memory.outputs.size(0), memory.outputs.size(2)
        feed = memory.outputs.new_zeros(batch, size)
        weights = memory.mask.new_zeros(memory.mask.shape).float()
        return self._state(memory.final, feed, weights, weights if self.coverage else None)

    @staticmethod
    def _state(hidden: tuple[Tensor, ...], feed: Tensor, attention: Tensor, coverage: Tensor | None) -> DecoderState:
        """The parts (L, B, H), the fed vector (B, H), attention weights (B, S) and coverage (B, S) where kept."""
        kept = {} if coverage is None else {"coverage": (coverage, SOURCE_ROWS)}
        return rnn_state(hidden, {"feed": (feed, ROWS), "attention": (attention, SOURCE_ROWS), **kept})

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
        previous, coverage = hidden_of(state), state.get("coverage")
        parts = kernels.precomputed_step(embedding_gates, state["feed"], tuple(part[0] for part in previous), weights)
        layers = [parts]
        for layer, cell in enumerate(self.cells[1:], start=1):
            parts = kernels.cell_step(cell, self.dropout(parts[0]), tuple(part[layer] for part in previous))
            layers.append(parts)
        output = parts[0]
        context, attention = self.attention(output, memory.keys, memory.outputs, memory.mask, coverage)
        attentional = torch.tanh(self.combine(torch.cat([context, output], dim=-1)))  # (B, H)
        hidden = tuple(torch.stack(layer_parts) for layer_parts in zip(*layers, strict=True))  # parts (L, B, H)
        coverage = None if coverage is None else coverage + attention
        return self.dropout(attentional), self._state(hidden, attentional, attention, coverage)


def _rnn_state(parts: tuple[Tensor, ...]) -> Tensor | tuple[Tensor, Tensor]:
    """nn.LSTM wants (h, c); nn.GRU wants h."""
    return (parts[0], parts[1]) if len(parts) == 2 else parts[0]


def _parts(hidden: Tensor | tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return hidden if isinstance(hidden, tuple) else (hidden,)

