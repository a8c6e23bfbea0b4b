"""Ensembles: models that share their vocabularies decode as one, averaging their next-token probabilities."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seq2seq.data.pairs import Batch
from seq2seq.data.vocab import PAD_ID
from seq2seq.models.decoder import DecoderState, Memory
from seq2seq.models.seq2seq import Seq2Seq


@dataclass
class EnsembleMemory:
    """Each member's encoder output."""

    parts: tuple[Memory, ...]

    def index_select(self, index: Tensor) -> EnsembleMemory:
        return EnsembleMemory(tuple(part.index_select(index) for part in self.parts))


@dataclass
class EnsembleState:
    """Each member's decoder state."""

    parts: tuple[DecoderState, ...]

    @property
    def attention(self) -> Tensor | None:
        """The members' last attention weights (B, S), averaged; None unless every member attends."""
        weights = [part.attention for part in self.parts if part.attention is not None]
        return torch.stack(weights).mean(dim=0) if len(weights) == len(self.parts) else None

    def index_select(self, index: Tensor) -> EnsembleState:
        return EnsembleState(tuple(part.index_select(index) for part in self.parts))


class Ensemble(nn.Module):
    """Several Seq2Seq models as one `encode / init_state / step` model: its next-token distribution is the mean of
    theirs, so every decoding strategy works on it unchanged."""

    def __init__(self, members: Sequence[Seq2Seq]) -> None:
        super().__init__()
        self.members: Sequence[Seq2Seq] = nn.ModuleList(members)  # type: ignore[assignment]

    def encode(self, src: Tensor, src_lengths: Tensor) -> EnsembleMemory:
        return EnsembleMemory(tuple(member.encode(src, src_lengths) for member in self.members))

    def init_state(self, memory: EnsembleMemory) -> EnsembleState:
        return EnsembleState(tuple(member.init_state(part) for member, part in zip(self.members, memory.parts,
                                                                                    strict=True)))

    def step(self, tokens: Tensor, state: EnsembleState, memory: EnsembleMemory) -> tuple[Tensor, EnsembleState]:
        """log of the mean of the members' next-token probabilities (B, V), and the new state."""
        log_probs, states = [], []
        for member, part, member_memory in zip(self.members, state.parts, memory.parts, strict=True):
            logits, new_state = member.step(tokens, part, member_memory)
            log_probs.append(torch.log_softmax(logits.float(), dim=-1))
            states.append(new_state)
        mean = torch.logsumexp(torch.stack(log_probs), dim=0) - math.log(len(log_probs))
        return mean, EnsembleState(tuple(states))

    def reference_log_probs(self, batch: Batch) -> tuple[Tensor, int]:
        """The summed log-probability of the batch's reference targets, fed one step at a time, and their count."""
        state = self.init_state(memory := self.encode(batch.src, batch.src_lengths))
        total = torch.zeros((), dtype=torch.float32, device=batch.src.device)
        for t in range(batch.tgt_in.size(1)):
            log_probs, state = self.step(batch.tgt_in[:, t], state, memory)
            targets = batch.tgt_out[:, t]
            real = targets != PAD_ID
            total += log_probs.gather(1, targets[:, None]).squeeze(1)[real].sum()
        return total, int((batch.tgt_out != PAD_ID).sum())
