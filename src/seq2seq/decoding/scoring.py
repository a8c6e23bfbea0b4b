"""Scoring given outputs through the step interface: the log-likelihood of reference tokens fed to a model one step
at a time, for the models that have no teacher-forced pass of their own (ensembles, exports); written once for torch
tensors and numpy arrays."""

from __future__ import annotations

from typing import Any

from seq2seq.data.vocab import PAD_ID
from seq2seq.decoding.arrays import Array, namespace


def stepwise_nll(model: Any, src: Array, src_lengths: Array, tokens_in: Array, targets: Array) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of targets (B, T) and their count, <pad> not counted: the model reads src
    (B, S) of lengths (B,), then tokens_in (B, T) one step at a time (`search.StepModel`)."""
    xp = namespace(src)
    total = xp.full((), 0.0, xp.standard.float64)  # on the device: read once, at the end
    with xp.no_grad():
        memory = model.encode(src, src_lengths)
        state = model.init_state(memory)
        for step in range(targets.shape[1]):
            logits, state = model.step(tokens_in[:, step], state, memory)
            log_probs = xp.log_softmax(xp.astype(logits, xp.float32))
            picked = xp.take_along_axis(log_probs, targets[:, step:step + 1])[:, 0]  # (B,)
            total = total - xp.sum(xp.astype(xp.where(targets[:, step] == PAD_ID, 0.0, picked), total.dtype))
    return float(total), int(xp.sum(xp.astype(targets != PAD_ID, xp.int64)))
