"""Decoding strategies over the model's encode / init_state / step interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from seq2seq.decoder import DecoderState, Memory
from seq2seq.vocab import BOS_ID, EOS_ID, PAD_ID


class StepModel(Protocol):
    """What decoding needs from a model."""

    def encode(self, src: Tensor, src_lengths: Tensor) -> Memory: ...

    def init_state(self, memory: Memory) -> DecoderState: ...

    def step(self, tokens: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState]: ...


@dataclass
class Decoded:
    """Output ids (B, T) padded after </s>, total log-probabilities (B,) and attention weights (B, T, S)."""

    tokens: Tensor
    scores: Tensor
    attention: Tensor | None


@torch.no_grad()
def greedy(model: StepModel, src: Tensor, src_lengths: Tensor, max_length: int) -> Decoded:
    """Pick the most likely token at every step, for the whole batch at once."""
    memory = model.encode(src, src_lengths)
    state = model.init_state(memory)
    batch = src.size(0)
    tokens = torch.full((batch,), BOS_ID, dtype=torch.long, device=src.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    scores = torch.zeros(batch, device=src.device)
    outputs, attention = [], []
    for _ in range(max_length):
        logits, state = model.step(tokens, state, memory)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        best, tokens = log_probs.max(dim=-1)
        tokens = tokens.masked_fill(finished, PAD_ID)
        scores += best.masked_fill(finished, 0.0)
        outputs.append(tokens)
        if state.attention is not None:
            attention.append(state.attention.float())
        finished |= tokens == EOS_ID
        if bool(finished.all()):
            break
    return Decoded(torch.stack(outputs, dim=1), scores, torch.stack(attention, dim=1) if attention else None)
