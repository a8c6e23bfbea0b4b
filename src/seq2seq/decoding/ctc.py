"""Connectionist temporal classification (CTC) in decoding: the CTC head's own greedy transcripts, and its prefix
scores joined to the attention decoder's in the one search (joint CTC-attention decoding, Watanabe et al. 2017).

A model with a CTC head gives, besides encode / init_state / step, `ctc_log_probs(memory)`: log-probabilities
(B, S, V) over the target vocabulary for each encoder frame, `<pad>` standing for the blank, and `memory.mask` (B, S)
says which frames are real. Written once over the array backends, like the search.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Protocol

from seq2seq.data.vocab import BOS_ID, EOS_ID, PAD_ID
from seq2seq.decoding.arrays import Array, Arrays, namespace
from seq2seq.errors import ConfigError

BLANK = PAD_ID  # CTC's blank is the <pad> row of the output layer: no transcript ever contains it


class CTCModel(Protocol):
    """A step model whose encoder has a CTC head (`ctc_weight` > 0: the weight of its loss in training)."""

    ctc_weight: float

    def encode(self, src: Array, src_lengths: Array) -> Any: ...

    def init_state(self, memory: Any) -> Any: ...

    def step(self, tokens: Array, state: Any, memory: Any) -> tuple[Array, Any]: ...

    def ctc_log_probs(self, memory: Any) -> Array: ...


def ctc_head_of(model: Any, use: str) -> CTCModel:
    """model, when it has a CTC head; else a ConfigError saying that `use` needs one."""
    if not getattr(model, "ctc_weight", 0.0):
        raise ConfigError(f"{use} needs a model with a CTC head (a speech model trained with model.ctc_weight above 0)")
    return model  # type: ignore[no-any-return]


def frames_of(xp: Arrays, log_probs: Array, mask: Array) -> Array:
    """The CTC log-probabilities (B, S, V) in fp32 with every padded frame certain to be blank, so that a prefix's
    probability stays as it was at its row's last real frame."""
    padded = xp.full((log_probs.shape[2],), -math.inf, xp.float32)
    padded[BLANK] = 0.0
    return xp.where(mask[:, :, None], xp.astype(log_probs, xp.float32), padded)


def best_paths(model: Any, src: Array, src_lengths: Array) -> list[tuple[list[int], list[float]]]:
    """Greedy CTC decoding: each row's most likely label per frame, repeats merged and blanks removed, `</s>` added;
    with each token's log-probability: that of the frames from the one it starts at to the next token's (`</s>`
    takes them all where nothing was said), so that they add up to the log-probability of the frame path."""
    xp = namespace(src)
    with xp.no_grad():
        memory = ctc_head_of(model, "strategy ctc").encode(src, src_lengths)
        log_probs = frames_of(xp, model.ctc_log_probs(memory), memory.mask)  # (B, S, V)
    best = xp.argmax(log_probs, axis=-1)  # (B, S)
    frame_scores = xp.take_along_axis(log_probs, best[:, :, None])[:, :, 0]  # (B, S)
    previous = xp.concat([xp.full((best.shape[0], 1), BLANK, xp.int64), best[:, :-1]], axis=1)
    emitted = (best != BLANK) & (best != previous)  # (B, S)
    return [_spelled(labels, starts, scores) for labels, starts, scores in
            zip(best.tolist(), emitted.tolist(), frame_scores.tolist(), strict=True)]


def _spelled(labels: list[int], starts: list[bool], scores: list[float]) -> tuple[list[int], list[float]]:
    """The tokens of one frame path (a label per frame, where each token starts) and their log-probabilities."""
    firsts = [frame for frame, start in enumerate(starts) if start]
    if not firsts:
        return [EOS_ID], [math.fsum(scores)]
    bounds = [0, *firsts[1:], len(labels)]
    return ([labels[frame] for frame in firsts] + [EOS_ID],
            [math.fsum(scores[begin:end]) for begin, end in itertools.pairwise(bounds)] + [0.0])


@dataclass
class JointMemory:
    """The decoder's memory and the CTC log-probabilities of its frames (B, S, V), padded frames blank."""

    memory: Any
    frames: Array

    def index_select(self, index: Array) -> JointMemory:
        return JointMemory(self.memory.index_select(index), self.frames[index])


@dataclass
class JointState:
    """The decoder's state and the CTC prefix state of each row's output g so far: the log-probabilities (N, S, 2)
    that the frames up to s spell g ending in a label (0) or in blank (1), g's prefix score log psi(g) (N,), the
    prefix scores of g + c for every token c (N, V) and g's last token (N,)."""

    decoder: Any
    spelled: Array
    prefix: Array
    extended: Array
    last: Array

    @property
    def attention(self) -> Array | None:
        return self.decoder.attention  # type: ignore[no-any-return]

    def index_select(self, index: Array) -> JointState:
        return JointState(self.decoder.index_select(index), self.spelled[index], self.prefix[index],
                          self.extended[index], self.last[index])


class JointDecoder:
    """A step model whose scores for each next token c after an output g are

        (1 - weight) * log p_attention(c | g) + weight * (log psi(g + c) - log psi(g)),

    psi being CTC's prefix probability (`</s>`: the probability that the frames spell exactly g). The search
    normalises these scores per row, a product of the two models' next-token distributions; the CTC part keeps the
    attention decoder from stopping early or repeating itself where the audio does not say so.
    """

    def __init__(self, model: CTCModel, weight: float) -> None:
        self.model, self.weight = model, weight

    def encode(self, src: Array, src_lengths: Array) -> JointMemory:
        memory = self.model.encode(src, src_lengths)
        return JointMemory(memory, frames_of(namespace(src), self.model.ctc_log_probs(memory), memory.mask))

    def init_state(self, memory: JointMemory) -> JointState:
        """Before the first token: g is empty; the frames up to s spell it with blanks only."""
        xp, frames = namespace(memory.frames), memory.frames
        rows, steps, vocab = frames.shape
        spelled = xp.stack([xp.full((rows, steps), -math.inf, xp.float32),
                            xp.cumulative_sum(frames[:, :, BLANK], axis=-1)], axis=2)  # (N, S, 2)
        return JointState(self.model.init_state(memory.memory), spelled, xp.full((rows,), 0.0, xp.float32),
                          xp.full((rows, vocab), 0.0, xp.float32), xp.full((rows,), BOS_ID, xp.int64))

    def step(self, tokens: Array, state: JointState, memory: JointMemory) -> tuple[Array, JointState]:
        xp = namespace(tokens)
        logits, decoder = self.model.step(tokens, state.decoder, memory.memory)
        spelled, prefix = self._extend(xp, state, tokens, memory.frames)
        extended = self._prefix_scores(xp, spelled, tokens, memory.frames)  # (N, V)
        known = xp.where(prefix == -math.inf, 0.0, prefix)  # an impossible g only has impossible extensions
        scores = self.weight * (extended - known[:, None])  # (N, V)
        if self.weight < 1.0:  # at 1 the decoder's scores do not count (0 x -inf would be nan)
            scores = scores + (1.0 - self.weight) * xp.log_softmax(xp.astype(logits, xp.float32))
        return scores, JointState(decoder, spelled, prefix, extended, tokens)

    @staticmethod
    def _extend(xp: Arrays, state: JointState, tokens: Array, frames: Array) -> tuple[Array, Array]:
        """The prefix state (N, S, 2) and score (N,) of g + token, token being what each row chose (`<s>` at the
        first step: g stays empty)."""
        started = tokens != BOS_ID  # (N,)
        prefix = xp.where(started, xp.take_along_axis(state.extended, tokens[:, None])[:, 0], state.prefix)
        rows, steps = frames.shape[:2]
        label = frames[xp.arange(rows)[:, None], xp.arange(steps)[None, :], tokens[:, None]]  # (N, S)
        reaching = _reaching(xp, state.spelled, tokens == state.last)  # (N, S)
        nothing = xp.full((rows,), -math.inf, xp.float32)
        columns = [(xp.where(state.last == BOS_ID, label[:, 0], -math.inf), nothing)]  # only g = "" starts at 0
        for frame in range(1, steps):
            label_end, blank_end = columns[-1]
            columns.append((xp.logaddexp(label_end, reaching[:, frame - 1]) + label[:, frame],
                            xp.logaddexp(blank_end, label_end) + frames[:, frame, BLANK]))
        spelled = xp.stack([xp.stack(column, axis=1) for column in columns], axis=1)  # (N, S, 2)
        return xp.where(started[:, None, None], spelled, state.spelled), prefix

    @staticmethod
    def _prefix_scores(xp: Arrays, spelled: Array, last: Array, frames: Array) -> Array:
        """log psi(g + c) (N, V) for every token c: the frames reach c from g at some frame s and say c there; for
        `</s>`, the frames spell exactly g; `<pad>` and `<s>` never follow."""
        rows, vocab = frames.shape[0], frames.shape[2]
        reaching = _reaching(xp, spelled[:, :, :, None], xp.arange(vocab)[None, :] == last[:, None])  # (N, S, V)
        # (N,): only an empty g is reached before the first frame
        empty = xp.where(last == BOS_ID, 0.0, xp.full((rows,), -math.inf, xp.float32))
        before = xp.concat([xp.full((rows, 1, vocab), 0.0, xp.float32) + empty[:, None, None], reaching[:, :-1]],
                           axis=1)  # (N, S, V): reached before frame s
        scores = xp.logsumexp(before + frames, axis=1)  # (N, V)
        scores[:, EOS_ID] = xp.logaddexp(spelled[:, -1, 0], spelled[:, -1, 1])
        scores[:, PAD_ID] = -math.inf
        scores[:, BOS_ID] = -math.inf
        return scores


def _reaching(xp: Arrays, spelled: Array, repeats: Array) -> Array:
    """Log-probability that the frames up to s spell g and may go on with a new label: g ending in blank, or also in a
    label where the new one differs from g's last (`repeats` False). spelled (N, S, 2[, V]), repeats (N[, V])."""
    ends_blank = spelled[:, :, 1]
    either = xp.logaddexp(spelled[:, :, 0], ends_blank)
    return xp.where(repeats[:, None], ends_blank, either)
