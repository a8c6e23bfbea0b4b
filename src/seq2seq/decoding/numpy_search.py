"""Greedy, beam search and sampling on numpy arrays: `torch_search`'s search for runtimes without PyTorch.

The same algorithms, rules and logits processors as `torch_search` (knobs, processor choice and constants come
from `options`, shared by both), written for numpy so that the ONNX runtime needs no torch; tests/onnx/test_onnx.py
proves the two give the same outputs. A model here is anything with `encode / init_state / step` on arrays whose
memory and state reorder rows with `index_select(index)`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, Self

import numpy as np
from numpy.typing import NDArray

from seq2seq.data.vocab import BOS_ID, EOS_ID, PAD_ID
from seq2seq.decoding.options import (
    DEFAULT_BEAM_SIZE,
    RELATIVE_MAX_LENGTH,
    DecodingOptions,
    Hypothesis,
    given,
    processor_specs,
)

Array = NDArray[Any]
LogitsProcessor = Callable[[Array, Array], Array]
"""(scores (N, V), history (N, t) of the tokens chosen so far) -> new scores (N, V); never changes its inputs."""
NEG_INF = -np.inf


class Reorderable(Protocol):
    """Encoder memory or decoder state: a row per batch entry, reordered or repeated by index_select."""

    def index_select(self, index: Array) -> Self: ...


class StepState(Reorderable, Protocol):
    """A decoder state; attention (B, S) holds the last step's attention weights, None without attention."""

    @property
    def attention(self) -> Array | None: ...


class StepModel(Protocol):
    """What the search needs from a model: `torch_search.StepModel` on numpy arrays."""

    def encode(self, src: Array, src_lengths: Array) -> Any: ...

    def init_state(self, memory: Any) -> Any: ...

    def step(self, tokens: Array, state: Any, memory: Any) -> tuple[Array, Any]: ...


@dataclass
class Decoded:
    """Rows of outputs, as `torch_search.Decoded`: ids (N, T), total log-probabilities (N,), attention (N, T, S),
    per-token log-probabilities (N, T) and lengths (N,)."""

    tokens: Array
    scores: Array
    attention: Array | None
    token_log_probs: Array
    lengths: Array


# ---- logits processors: pure (scores (N, V), history (N, t)) -> scores (N, V)

def ban_tokens(scores: Array, history: Array, token_ids: Sequence[int]) -> Array:
    """The given tokens can never be chosen."""
    banned = scores.copy()
    banned[:, list(token_ids)] = NEG_INF
    return banned


def block_eos_before(scores: Array, history: Array, min_length: int) -> Array:
    """</s> can not be chosen before min_length tokens have been produced."""
    return ban_tokens(scores, history, (EOS_ID,)) if history.shape[1] < min_length else scores


def block_repeated_ngrams(scores: Array, history: Array, size: int) -> Array:
    """A token can not complete an n-gram of this size that the row has already produced."""
    if history.shape[1] < size:
        return scores
    windows = np.lib.stride_tricks.sliding_window_view(history, size, axis=1)  # (N, W, n)
    prefix = history[:, history.shape[1] - size + 1:]  # (N, n - 1)
    seen = (windows[:, :, :-1] == prefix[:, None, :]).all(axis=2)  # (N, W)
    hits = np.zeros(scores.shape, dtype=bool)
    rows = np.broadcast_to(np.arange(scores.shape[0])[:, None], seen.shape)
    hits[rows[seen], windows[:, :, -1][seen]] = True
    return np.where(hits, NEG_INF, scores).astype(scores.dtype)


def scale_temperature(scores: Array, history: Array, temperature: float) -> Array:
    """Logits / T: below 1 sharpens the distribution, above 1 flattens it."""
    return (scores / np.float32(temperature)).astype(scores.dtype)


def keep_top_k(scores: Array, history: Array, k: int) -> Array:
    """Only the k highest-scoring tokens stay possible."""
    k = min(k, scores.shape[1])
    threshold = -np.partition(-scores, k - 1, axis=1)[:, k - 1:k]  # (N, 1)
    return np.where(scores < threshold, NEG_INF, scores).astype(scores.dtype)


def keep_top_p(scores: Array, history: Array, p: float) -> Array:
    """Nucleus: only the smallest set of most likely tokens whose probability reaches p stays possible."""
    order = np.argsort(-scores, axis=1, kind="stable")  # (N, V)
    probs = softmax(np.take_along_axis(scores, order, axis=1))
    outside = np.empty_like(order, dtype=bool)
    np.put_along_axis(outside, order, probs.cumsum(axis=1) - probs >= p, axis=1)
    return np.where(outside, NEG_INF, scores).astype(scores.dtype)


PROCESSORS: dict[str, Callable[..., Array]] = {
    "ban_tokens": ban_tokens, "block_eos_before": block_eos_before, "block_repeated_ngrams": block_repeated_ngrams,
    "scale_temperature": scale_temperature, "keep_top_k": keep_top_k, "keep_top_p": keep_top_p}
"""The processors by the names `options.processor_specs` gives them."""
DEFAULT_PROCESSORS: tuple[LogitsProcessor, ...] = (partial(ban_tokens, token_ids=(PAD_ID, BOS_ID)),)


def build_processors(options: DecodingOptions) -> list[LogitsProcessor]:
    """The processors the options ask for (`options.processor_specs`), masks first."""
    return [partial(PROCESSORS[name], **values) for name, values in processor_specs(options)]


def _process(processors: Sequence[LogitsProcessor], scores: Array, history: Array) -> Array:
    for processor in processors:
        scores = processor(scores, history)
    return scores


def log_softmax(scores: Array) -> Array:
    """log softmax over the last axis, in the scores' precision."""
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(scores: Array) -> Array:
    return np.exp(log_softmax(scores))


def top(values: Array, count: int) -> tuple[Array, Array]:
    """The count largest values of each row (N, M), largest first, and their indices (N, count)."""
    if count < values.shape[1]:
        candidates = np.argpartition(-values, count - 1, axis=1)[:, :count]  # (N, count), unordered
        order = np.argsort(-np.take_along_axis(values, candidates, axis=1), axis=1, kind="stable")
        index = np.take_along_axis(candidates, order, axis=1)
    else:
        index = np.argsort(-values, axis=1, kind="stable")
    return np.take_along_axis(values, index, axis=1), index


# ---- the entry point

def decode(model: StepModel, src: Array, src_lengths: Array, options: DecodingOptions,
           generator: np.random.Generator | None = None, cap: int = 0) -> list[list[Hypothesis]]:
    """Outputs for each input, as `torch_search.decode`: n_best with beam, num_samples with sample, one with greedy.

    Args:
        model: anything with encode / init_state / step on arrays.
        src: source ids (B, S), padded with <pad>; src_lengths: real lengths (B,).
        options: the strategy and its knobs.
        generator: random source for sampling; by default one seeded with options.seed (fresh entropy when unset).
        cap: without options.max_length, the most output tokens of any sentence (0: none).
    """
    processors = build_processors(options)
    limits = max_lengths(src_lengths, options.max_length, cap)  # (B,)
    if options.strategy == "beam":
        decoded = beam_search(model, src, src_lengths, limits, processors, given(options.beam_size, DEFAULT_BEAM_SIZE),
                              given(options.length_penalty, 1.0), given(options.n_best, 1))
    elif options.strategy == "sample":
        generator = generator or np.random.default_rng(options.seed)
        decoded = sample(model, src, src_lengths, limits, processors, given(options.num_samples, 1), generator)
    else:
        decoded = greedy(model, src, src_lengths, limits, processors)
    return _hypotheses(decoded, src_lengths, options.per_input)


def max_lengths(src_lengths: Array, max_length: int = 0, cap: int = 0) -> Array:
    """Output tokens allowed per sentence (B,), </s> included: max_length, or when 0 ceil(a * S) + b, at most cap
    (when above 0; see `options.output_cap`)."""
    if max_length:
        return np.full_like(src_lengths, max_length)
    ratio, offset = RELATIVE_MAX_LENGTH
    relative = np.ceil(src_lengths * np.float32(ratio)).astype(np.int64) + offset
    return np.minimum(relative, cap) if cap else relative


def _hypotheses(decoded: Decoded, src_lengths: Array, per_input: int) -> list[list[Hypothesis]]:
    """Split the rows (input b's hypotheses are rows b * per_input ...) into Hypothesis lists, one per input."""
    tokens, log_probs = decoded.tokens.tolist(), decoded.token_log_probs.tolist()
    scores, lengths, sources = decoded.scores.tolist(), decoded.lengths.tolist(), src_lengths.tolist()
    attention = decoded.attention
    rows = [Hypothesis(tokens[row][:length], scores[row], log_probs[row][:length],
                       None if attention is None else attention[row, :length, :sources[row // per_input]])
            for row, length in enumerate(lengths)]
    return [rows[start:start + per_input] for start in range(0, len(rows), per_input)]


# ---- greedy and sampling: one token per row and step

def greedy(model: StepModel, src: Array, src_lengths: Array, max_length: int | Array,
           processors: Sequence[LogitsProcessor] = DEFAULT_PROCESSORS) -> Decoded:
    """Pick the most likely allowed token at every step, for the whole batch at once."""
    return finish(stream(model, src, src_lengths, max_length, processors))


def sample(model: StepModel, src: Array, src_lengths: Array, max_length: int | Array,
           processors: Sequence[LogitsProcessor] = DEFAULT_PROCESSORS, num_samples: int = 1,
           generator: np.random.Generator | None = None) -> Decoded:
    """Draw every token from the processed distribution; rows b * num_samples + j are input b's samples."""
    return finish(stream(model, src, src_lengths, max_length, processors, num_samples, generator, draw=True))


def stream(model: StepModel, src: Array, src_lengths: Array, max_length: int | Array,
           processors: Sequence[LogitsProcessor] = DEFAULT_PROCESSORS, num_samples: int = 1,
           generator: np.random.Generator | None = None, draw: bool = False) -> Generator[Array, None, Decoded]:
    """`greedy` (or with draw `sample`) one step at a time: yields the tokens (N,) chosen at each step."""
    memory = model.encode(src, src_lengths)
    state = model.init_state(memory)
    limits = _limits(max_length, src_lengths)
    choose: Callable[[Array], Array] = _most_likely
    if draw:
        expand = np.repeat(np.arange(src.shape[0]), num_samples)  # (B * N,)
        memory, state = memory.index_select(expand), state.index_select(expand)
        limits, choose = limits[expand], partial(_draw, generator=generator or np.random.default_rng())
    return (yield from _steps(model, memory, state, limits, processors, choose))


def _limits(max_length: int | Array, src_lengths: Array) -> Array:
    return max_length if isinstance(max_length, np.ndarray) else max_lengths(src_lengths, max_length)


def finish(steps: Generator[Array, None, Decoded]) -> Decoded:
    """Run the steps to their end; what they return."""
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value


def _most_likely(scores: Array) -> Array:
    return scores.argmax(axis=-1)


def _draw(scores: Array, generator: np.random.Generator) -> Array:
    """Sample from softmax(scores) as argmax of p / E with E ~ Exp(1), like `torch_search._draw`."""
    race = np.log(np.maximum(generator.standard_exponential(scores.shape, dtype=np.float32), 1e-30))  # (N, V)
    return (scores - race).argmax(axis=-1)


def _steps(model: StepModel, memory: Reorderable, state: StepState, limits: Array,
           processors: Sequence[LogitsProcessor], choose: Callable[[Array], Array]
           ) -> Generator[Array, None, Decoded]:
    """Advance each row one chosen token per step until it produced </s> or reached its limit (N,)."""
    rows, steps = limits.shape[0], int(limits.max())
    tokens = np.full((rows,), BOS_ID, dtype=np.int64)
    history = np.full((rows, steps), PAD_ID, dtype=np.int64)  # (N, T)
    token_log_probs = np.zeros((rows, steps), dtype=np.float32)  # (N, T)
    lengths, finished = np.zeros_like(limits), np.zeros(rows, dtype=bool)
    attention = []
    for step in range(steps):
        logits, state = model.step(tokens, state, memory)
        logits = logits.astype(np.float32)  # (N, V)
        tokens = np.where(finished, PAD_ID, choose(_process(processors, logits, history[:, :step])))  # (N,)
        history[:, step] = tokens
        yield tokens
        chosen = np.take_along_axis(log_softmax(logits), tokens[:, None], axis=1)[:, 0]  # (N,)
        token_log_probs[:, step] = np.where(finished, 0.0, chosen)
        if state.attention is not None:
            attention.append(state.attention.astype(np.float32))
        lengths += ~finished
        finished |= (tokens == EOS_ID) | (lengths >= limits)
        if finished.all():
            break
    width = step + 1
    weights = np.stack(attention, axis=1) if attention else None  # (N, T, S)
    return Decoded(history[:, :width], token_log_probs[:, :width].sum(axis=1), weights, token_log_probs[:, :width],
                   lengths)


# ---- beam search: the K beams of every sentence still searched advance as one batch

def beam_search(model: StepModel, src: Array, src_lengths: Array, max_length: int | Array,
                processors: Sequence[LogitsProcessor] = DEFAULT_PROCESSORS, beam_size: int = 5,
                length_penalty: float = 1.0, n_best: int = 1) -> Decoded:
    """Keep the beam_size most likely prefixes of each sentence; return its n_best finished hypotheses, best first
    (`torch_search.beam_search`: the same ranking, stopping rule and rows)."""
    memory = model.encode(src, src_lengths)
    state = model.init_state(memory)
    beams = _Beams(_limits(max_length, src_lengths), beam_size, n_best, length_penalty)
    tokens = np.full((src.shape[0],), BOS_ID, dtype=np.int64)
    for step in range(int(beams.limits.max())):
        logits, state = model.step(tokens, state, memory)  # (A*K, V); (B, V) first
        if not step:  # the first step ran once per sentence: its results stand for all K beams
            expand = np.repeat(np.arange(src.shape[0]), beam_size)  # (B*K,)
            logits, state, memory = logits[expand], state.index_select(expand), memory.index_select(expand)
        rows, tokens, staying = beams.advance(step, logits, state.attention, processors)
        if not rows.size:
            break
        state = state.index_select(rows)
        if staying is not None:
            memory = memory.index_select(staying)
    return beams.best_hypotheses()


def _penalty(length: Array | int, alpha: float) -> Array | float:
    """GNMT length penalty ((5 + length) / 6) ** alpha."""
    return ((np.float32(5.0) + length) / np.float32(6.0)) ** np.float32(alpha)


def _best_extensions(logits: Array, scores: Array, history: Array, processors: Sequence[LogitsProcessor],
                     count: int) -> tuple[Array, Array, Array]:
    """The `count` best one-token extensions of each sentence's K live beams (logits (A*K, V), log-probabilities
    (A, K)): total log-probabilities, indices into the sentence's K*V extensions and the added tokens'
    log-probabilities, each (A, count)."""
    sentences = scores.shape[0]
    log_probs = log_softmax(logits.astype(np.float32))  # (A*K, V)
    totals = _process(processors, log_probs, history) + scores.reshape(-1, 1)
    best, index = top(totals.reshape(sentences, -1), count)  # (A, count) of (A, K*V)
    return best, index, np.take_along_axis(log_probs.reshape(sentences, -1), index, axis=1)


@dataclass
class _BeamStep:
    """What one step leaves for backtracking, per sentence and candidate (B, 2K)."""

    parents: Array
    tokens: Array
    log_probs: Array
    totals: Array
    finals: Array
    keep: Array  # (B, K)
    attention: Array | None  # (B, 2K, S)


class _Beams:
    """The running state of a batched beam search (`torch_search._Beams` on arrays)."""

    def __init__(self, limits: Array, beam_size: int, n_best: int, length_penalty: float) -> None:
        batch = limits.shape[0]
        self.limits, self.beam_size, self.n_best, self.alpha = limits, beam_size, n_best, length_penalty
        self.scores = np.full((batch, beam_size), NEG_INF, dtype=np.float32)  # (B, K)
        self.scores[:, 0] = 0.0  # the K beams start alike: expand only one
        self.searched = np.arange(batch)  # (A,)
        self.history = np.zeros((batch * beam_size, 0), dtype=np.int64)  # (A*K, t)
        self.best = np.full((batch, n_best), NEG_INF, dtype=np.float32)  # (B, n)
        self.done = np.zeros(batch, dtype=bool)
        self.steps: list[_BeamStep] = []

    def advance(self, step: int, logits: Array, attention: Array | None,
                processors: Sequence[LogitsProcessor]) -> tuple[Array, Array, Array | None]:
        """Score every extension of the live beams, keep the finished ones aside and the K best others live;
        returns the rows the live beams extend, their tokens and the rows that stay (None when all stay)."""
        searched, vocab = self.searched, logits.shape[1]
        best, index, log_probs = _best_extensions(logits, self.scores[searched], self.history, processors,
                                                  2 * self.beam_size)  # (A, 2K)
        parents, tokens = index // vocab, index % vocab  # (A, 2K)
        rows = parents + np.arange(0, logits.shape[0], self.beam_size)[:, None]  # (A, 2K)
        totals, all_tokens = self._spread(best, NEG_INF), self._spread(tokens, PAD_ID)  # (B, 2K)
        ending = (all_tokens == EOS_ID) | (self.limits <= step + 1)[:, None]  # (B, 2K)
        finals = self.finish(step, totals, ending)
        keep = self._go_on(totals, ending)
        weights = None if attention is None else self._spread(attention.astype(np.float32)[rows], 0.0)
        self.steps.append(_BeamStep(self._spread(parents, 0), all_tokens, self._spread(log_probs, 0.0), totals,
                                    finals, keep, weights))
        self._update_done(step)
        going_on = ~self.done[searched]  # (A,)
        live = keep[searched][going_on]  # (A', K)
        live_rows = np.take_along_axis(rows[going_on], live, axis=1).reshape(-1)
        live_tokens = np.take_along_axis(tokens[going_on], live, axis=1).reshape(-1)
        self.history = np.concatenate([self.history[live_rows], live_tokens[:, None]], axis=1)
        if going_on.all():
            return live_rows, live_tokens, None
        self.searched = searched[going_on]
        staying = np.arange(logits.shape[0]).reshape(-1, self.beam_size)[going_on].reshape(-1)
        return live_rows, live_tokens, staying

    def _spread(self, values: Array, fill: float) -> Array:
        """Values (A, ...) of the sentences searched as rows (B, ...) of the whole batch, fill for the others."""
        if values.shape[0] == self.done.shape[0]:
            return values
        spread = np.full((self.done.shape[0], *values.shape[1:]), fill, dtype=values.dtype)
        spread[self.searched] = values
        return spread

    def finish(self, step: int, totals: Array, ending: Array) -> Array:
        """Ranking scores (B, 2K) of the ending candidates among the K best (else -inf); updates the n best."""
        first_k = np.arange(totals.shape[1]) < self.beam_size  # (2K,)
        finals = np.where(ending & first_k, totals / _penalty(step + 1, self.alpha), NEG_INF).astype(np.float32)
        self.best = top(np.concatenate([self.best, finals], axis=1), self.n_best)[0]  # (B, n)
        return finals

    def _go_on(self, totals: Array, ending: Array) -> Array:
        """The K best candidates that do not end (B, K), in rank order; they become the live beams."""
        width = totals.shape[1]
        ranks = np.arange(width) + ending.astype(np.int64) * width  # (B, 2K) the ending ones last
        keep = np.argsort(ranks, axis=1, kind="stable")[:, :self.beam_size]  # (B, K)
        self.scores = np.take_along_axis(totals, keep, axis=1)
        return keep

    def _update_done(self, step: int) -> None:
        """A sentence is done at its limit, or when no live beam can beat its n-th best finished hypothesis."""
        longest = self.limits if self.alpha > 0 else np.full_like(self.limits, step + 2)
        bound = self.scores.max(axis=1) / _penalty(longest, self.alpha)  # (B,)
        self.done |= (self.limits <= step + 1) | (self.best[:, -1] >= bound)
        self.scores = np.where(self.done[:, None], NEG_INF, self.scores).astype(np.float32)

    def best_hypotheses(self) -> Decoded:
        """The n best finished hypotheses of each sentence, rows b * n + i, best first."""
        finals = np.stack([record.finals for record in self.steps], axis=1)  # (B, T, 2K)
        batch, _, width = finals.shape
        picked = top(finals.reshape(batch, -1), self.n_best)[1]  # (B, n)
        ends, candidates = picked // width, picked % width
        totals = np.take_along_axis(np.stack([record.totals for record in self.steps], axis=1).reshape(batch, -1),
                                    picked, axis=1)
        tokens, log_probs, attention = self._backtrack(ends, candidates)
        return Decoded(tokens.reshape(-1, tokens.shape[2]), totals.reshape(-1), attention,
                       log_probs.reshape(-1, log_probs.shape[2]), (ends + 1).reshape(-1))

    def _backtrack(self, ends: Array, candidates: Array) -> tuple[Array, Array, Array | None]:
        """Token ids and log-probabilities (B, n, T) and attention (B*n, T, S) of the hypotheses that end at
        (ends, candidates) (B, n), read back from the last step through each candidate's parent."""
        shape = (*ends.shape, len(self.steps))
        tokens = np.full(shape, PAD_ID, dtype=np.int64)
        log_probs = np.zeros(shape, dtype=np.float32)
        weights, current = [], candidates
        for step in reversed(range(len(self.steps))):
            record, outside = self.steps[step], ends < step  # (B, n)
            current = np.where(ends == step, candidates, current)  # (B, n)
            tokens[:, :, step] = np.where(outside, PAD_ID, np.take_along_axis(record.tokens, current, axis=1))
            log_probs[:, :, step] = np.where(outside, 0.0, np.take_along_axis(record.log_probs, current, axis=1))
            if record.attention is not None:
                picked = np.take_along_axis(record.attention, current[:, :, None], axis=1)  # (B, n, S)
                weights.append(np.where(outside[:, :, None], 0.0, picked))
            if step:
                parents = np.take_along_axis(record.parents, current, axis=1)
                current = np.take_along_axis(self.steps[step - 1].keep, parents, axis=1)
        attention = np.stack(weights[::-1], axis=2).reshape(-1, len(self.steps), weights[0].shape[2]) \
            if weights else None  # (B*n, T, S)
        return tokens, log_probs, attention
