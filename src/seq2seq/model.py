"""Seq2Seq: encoder + decoder + output projection, exposing encode / init_state / step to the decoding code."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seq2seq.config import ModelConfig
from seq2seq.decoder import DECODERS, DecoderState, Memory
from seq2seq.encoder import Encoder
from seq2seq.vocab import PAD_ID


class Seq2Seq(nn.Module):
    """An RNN encoder-decoder of one of the architectures `context`, `repeat` or `attention`."""

    def __init__(self, config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(src_vocab_size, config.embedding_size, config.hidden_size, config.num_layers,
                               config.rnn, config.bidirectional, config.dropout)
        self.decoder = DECODERS[config.arch](config, tgt_vocab_size)
        self.generator = nn.Linear(config.hidden_size, tgt_vocab_size)

    def encode(self, src: Tensor, src_lengths: Tensor) -> Memory:
        """Run the encoder over src (B, S) once per sentence."""
        outputs, final = self.encoder(src, src_lengths)
        attention = getattr(self.decoder, "attention", None)
        keys = attention.prepare_keys(outputs) if attention is not None else outputs
        return Memory(outputs, keys, src != PAD_ID, final)

    def init_state(self, memory: Memory) -> DecoderState:
        """The decoder's state before its first step."""
        return self.decoder.init_state(memory)

    def step(self, tokens: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState]:
        """Feed one token per row (B,); returns logits (B, V) for the next token and the new state."""
        features, state = self.decoder.step(tokens, state, memory)
        return self.generator(features), state

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0) -> Tensor:
        """Decoder features (B, T, H) for every target position; `project` turns them into logits.

        With teacher_forcing < 1 each step feeds, with that probability, the reference token, and otherwise the
        model's own best guess at the previous step (scheduled sampling).
        """
        memory = self.encode(src, src_lengths)
        state = self.init_state(memory)
        if teacher_forcing >= 1.0:
            return self.decoder(tgt_in, state, memory)[0]
        features, tokens = [], tgt_in[:, 0]
        for t in range(tgt_in.size(1)):
            output, state = self.decoder.step(tokens, state, memory)
            features.append(output)
            if t + 1 < tgt_in.size(1):
                use_reference = torch.rand(tokens.shape, device=tokens.device) < teacher_forcing
                tokens = torch.where(use_reference, tgt_in[:, t + 1], self.generator(output).argmax(-1))
        return torch.stack(features, dim=1)

    def project(self, features: Tensor) -> Tensor:
        """Features (..., H) -> logits (..., V)."""
        return self.generator(features)
