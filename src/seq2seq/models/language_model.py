"""LanguageModel: embedding (or one-hot) -> stacked LSTM/GRU -> generator, with Seq2Seq's decoding interface.

It exposes encode / init_state / step, so the decoding strategies written for Seq2Seq generate text with it
unchanged. How a prompt is read: `encode` runs the RNN over `<s> prompt` and keeps the output of its last token;
`init_state` carries that output in the state as `prompt_output`, and the first `step` projects it into the logits of
the first new token without reading anything (the start token the decoding loop feeds there is not part of the text).
Every later step reads the token chosen before it: one RNN step per generated token, never re-reading the prompt.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2seq.config import ModelConfig
from seq2seq.data.vocab import PAD_ID
from seq2seq.models import kernels
from seq2seq.models.decoder import DecoderState, Memory, _rnn_state, hidden_axes, hidden_of, rnn_state
from seq2seq.models.encoder import RNN_TYPES
from seq2seq.models.outputs import output_layer
from seq2seq.models.state import ROWS, Axes
from seq2seq.utils.device import rnn_autocast

PROMPT_OUTPUT = "prompt_output"  # the state's (B, H) output of the prompt's last token, until the first step


class OneHot(nn.Module):
    """Token ids (...) -> one-hot vectors (..., V): the input layer of the classic character-level generator."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, ids: Tensor) -> Tensor:
        return nn.functional.one_hot(ids, self.vocab_size).float()


class LanguageModel(nn.Module):
    """A recurrent language model over one vocabulary; `generator` turns features (..., H) into scores (..., V) of
    the next token (logits, or log-probabilities with `model.adaptive_softmax`: `outputs`)."""

    carries_state = True  # `read` continues from the state it is given

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.config = config
        self.embedding: nn.Module
        if config.one_hot:
            self.embedding, input_size = OneHot(vocab_size), vocab_size
        else:
            self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
            input_size = config.embedding_size
        self.rnn = RNN_TYPES[config.rnn](input_size, config.hidden_size, config.num_layers, batch_first=True,
                                         dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(config.dropout)
        self.generator = output_layer(config.hidden_size, vocab_size, config.adaptive_softmax)

    def read(self, tokens: Tensor, hidden: tuple[Tensor, ...] | None = None,
             lengths: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Run the RNN over tokens (B, T) from a state (parts (L, B, H); zeros when None).

        With lengths (B,) the rows are packed, so that the returned state is each row's state after its own last
        token; without, every row is read to the end (padding at the end only affects positions after it).
        Returns features (B, T, H) and the state.
        """
        inputs = self.dropout(self.embedding(tokens))  # (B, T, E)
        state = None if hidden is None else _rnn_state(hidden)  # None: zeros
        with rnn_autocast(inputs.device):
            if lengths is None:
                outputs, final = self.rnn(inputs.float(), state)
            else:
                packed = pack_padded_sequence(inputs.float(), lengths.cpu(), batch_first=True, enforce_sorted=False)
                packed_outputs, final = self.rnn(packed, state)
                outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=tokens.size(1))
        return self.dropout(outputs), final if isinstance(final, tuple) else (final,)

    def forward(self, tokens: Tensor) -> Tensor:
        """Features (B, T, H) for every position of tokens (B, T), read from a zero state."""
        return self.read(tokens)[0]

    def output_loss(self, features: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Summed cross-entropy of targets (N,) given features (N, H)."""
        return self.generator.loss(features, targets, label_smoothing)

    def encode(self, src: Tensor, src_lengths: Tensor) -> Memory:
        """Read prompts src (B, P) = `<s> prompt` padded at the end, with their lengths (B,) (at least 1)."""
        outputs, final = self.read(src, lengths=src_lengths)  # (B, P, H)
        return Memory(outputs, outputs, src != PAD_ID, final)

    def init_state(self, memory: Memory) -> DecoderState:
        """The state after each prompt, with the output of its last token (B, H) waiting to be projected."""
        last = memory.mask.sum(dim=1) - 1  # (B,) position of each prompt's last token
        rows = torch.arange(last.size(0), device=last.device)
        return rnn_state(memory.final, {PROMPT_OUTPUT: (memory.outputs[rows, last], ROWS)})

    def state_axes(self) -> dict[str, Axes]:
        """The RNN's parts (L, B, H) and, before the first step, the prompt's last output (B, H)."""
        return {**hidden_axes(self.config), PROMPT_OUTPUT: ROWS}

    def step(self, tokens: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState]:
        """Logits (B, V) of the next token and the new state; reads tokens (B,) except on the first step.

        The first step after `init_state` predicts from the prompt's last output (`PROMPT_OUTPUT`): the token the
        decoding loop feeds there (its start symbol) is not read, because the prompt has already been read.
        """
        if PROMPT_OUTPUT in state:
            return self.generator(state[PROMPT_OUTPUT]), rnn_state(hidden_of(state))
        features, hidden = self._advance(self.dropout(self.embedding(tokens)), hidden_of(state))  # (B, H)
        return self.generator(self.dropout(features)), rnn_state(hidden)

    def _advance(self, inputs: Tensor, hidden: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One time step of self.rnn: inputs (B, E), state parts (L, B, H) -> features (B, H), state."""
        return kernels.rnn_step(self.rnn, inputs, hidden)
