"""Decoding strategies (greedy, beam search, sampling) over the model's encode / init_state / step interface, written
once for torch tensors (PyTorch models) and numpy arrays (the torch-free ONNX runtime).

Every strategy drives a model only through `encode(src, src_lengths)`, `init_state(memory)` and
`step(tokens, state, memory)`, and expands or reorders rows only through `index_select` on the memory and the state,
so it serves every architecture, and a language model whose `src` is the prompt. The choice of each next token is
shaped by logits processors: small pure functions `(scores, history) -> scores` shared by the strategies. The arrays
of `src` pick the backend (`arrays.namespace`). `decode(model, src, src_lengths, DecodingOptions(...))` is the one
entry point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, Self, TypeVar

from seq2seq.data.vocab import BOS_ID, EOS_ID, PAD_ID
from seq2seq.decoding.arrays import Array, Arrays, namespace
from seq2seq.decoding.ctc import JointDecoder, best_paths, ctc_head_of
from seq2seq.decoding.options import (
    DEFAULT_BEAM_SIZE,
    RELATIVE_MAX_LENGTH,
    DecodingOptions,
    Hypothesis,
    given,
    processor_specs,
)

LogitsProcessor = Callable[[Array, Array], Array]
"""(scores (N, V), history (N, t) of the tokens chosen so far) -> new scores (N, V); never changes its inputs."""


class Reorderable(Protocol):
    """Encoder memory or decoder state: a row per batch entry, reordered or repeated by index_select."""

    def index_select(self, index: Array) -> Self: ...


class StepState(Reorderable, Protocol):
    """A decoder state; attention (B, S) holds the last step's attention weights, None without attention."""

    @property
    def attention(self) -> Array | None: ...


MemoryT = TypeVar("MemoryT", bound=Reorderable)
StateT = TypeVar("StateT", bound=StepState)


class StepModel(Protocol[MemoryT, StateT]):
    """What decoding needs from a model (a Seq2Seq, a LanguageModel, an Ensemble or an exported model)."""

    def encode(self, src: Array, src_lengths: Array) -> MemoryT: ...

    def init_state(self, memory: MemoryT) -> StateT: ...

    def step(self, tokens: Array, state: StateT, memory: MemoryT) -> tuple[Array, StateT]: ...


@dataclass
class Decoded:
    """Rows of outputs: ids (N, T) padded after their end, total log-probabilities (N,), per-token log-probabilities
    (N, T), lengths (N,) with </s> and attention weights (N, T, S). N is B times the hypotheses per input."""

    tokens: Array
    scores: Array
    attention: Array | None
    token_log_probs: Array
    lengths: Array


# ---- logits processors: pure (scores (N, V), history (N, t)) -> scores (N, V)

def ban_tokens(scores: Array, history: Array, token_ids: Sequence[int]) -> Array:
    """The given tokens can never be chosen."""
    xp = namespace(scores)
    penalty = xp.full((scores.shape[1],), 0.0, scores.dtype)  # (V,): adding it is cheaper than a masked fill
    for token in token_ids:  # a few specials: plain indexing, no index array to copy to the device
        penalty[token] = -math.inf
    return scores + penalty


def block_eos_before(scores: Array, history: Array, min_length: int) -> Array:
    """</s> can not be chosen before min_length tokens have been produced."""
    return ban_tokens(scores, history, (EOS_ID,)) if history.shape[1] < min_length else scores


def block_repeated_ngrams(scores: Array, history: Array, size: int) -> Array:
    """A token can not complete an n-gram of this size that the row has already produced (all on the device)."""
    rows, steps = history.shape
    if steps < size:
        return scores
    xp, width = namespace(scores), steps - size + 1  # the W n-grams produced so far start at 0 .. W - 1
    seen = xp.full((rows, width), True, xp.bool)  # (N, W): the n-gram's first n - 1 tokens are the last n - 1
    for offset in range(size - 1):
        seen &= history[:, offset:offset + width] == history[:, width + offset:width + offset + 1]
    vocab = scores.shape[1]
    hits = xp.full((rows, vocab + 1), False, xp.bool)  # (N, V + 1): unseen n-grams mark the spare last column
    hits[xp.arange(rows)[:, None], xp.where(seen, history[:, size - 1:], vocab)] = True
    return xp.where(hits[:, :vocab], -math.inf, scores)


def scale_temperature(scores: Array, history: Array, temperature: float) -> Array:
    """Logits / T: below 1 sharpens the distribution, above 1 flattens it."""
    return scores / temperature


def keep_top_k(scores: Array, history: Array, k: int) -> Array:
    """Only the k highest-scoring tokens stay possible."""
    xp = namespace(scores)
    threshold = xp.top(scores, min(k, scores.shape[1]))[0][:, -1:]  # (N, 1)
    return xp.where(scores < threshold, -math.inf, scores)


def keep_top_p(scores: Array, history: Array, p: float) -> Array:
    """Nucleus: only the smallest set of most likely tokens whose probability reaches p stays possible."""
    xp = namespace(scores)
    ranked, order = xp.top(scores, scores.shape[1])  # (N, V) sorted, largest first
    probs = xp.softmax(ranked)
    outside = xp.full(scores.shape, False, xp.bool)
    above = xp.cumulative_sum(probs, axis=-1) - probs >= p  # the tokens ranked above already hold p
    outside[xp.arange(scores.shape[0])[:, None], order] = above
    return xp.where(outside, -math.inf, scores)


def build_processors(options: DecodingOptions) -> list[LogitsProcessor]:
    """The processors the options ask for (`options.processor_specs`), masks first."""
    return [partial(PROCESSORS[name], **values) for name, values in processor_specs(options)]


PROCESSORS: dict[str, Callable[..., Array]] = {
    "ban_tokens": ban_tokens, "block_eos_before": block_eos_before, "block_repeated_ngrams": block_repeated_ngrams,
    "scale_temperature": scale_temperature, "keep_top_k": keep_top_k, "keep_top_p": keep_top_p}
"""The processors by the names `options.processor_specs` gives them."""
DEFAULT_PROCESSORS: tuple[LogitsProcessor, ...] = (partial(ban_tokens, token_ids=(PAD_ID, BOS_ID)),)


def _process(processors: Sequence[LogitsProcessor], scores: Array, history: Array) -> Array:
    for processor in processors:
        scores = processor(scores, history)
    return scores


# ---- the entry point

def decode(model: StepModel[Any, Any], src: Array, src_lengths: Array, options: DecodingOptions,
           generator: Any = None, cap: int = 0) -> list[list[Hypothesis]]:
    """Outputs for each input: n_best (best first) with beam, num_samples (as drawn) with sample, one with greedy
    and ctc. A model with a CTC head (`decoding.ctc`) joins its prefix scores to greedy and beam search with
    options.ctc_weight, by default the weight it was trained with.

    Args:
        model: anything with encode / init_state / step.
        src: source (or prompt) ids (B, S), padded with <pad>: a tensor, or a numpy array for an exported model.
        src_lengths: real lengths (B,).
        options: the strategy and its knobs.
        generator: random source for sampling (a torch or numpy generator); by default one seeded with options.seed
            (unseeded: torch's global generator, or fresh numpy entropy).
        cap: without options.max_length, the most output tokens of any sentence (0: none).

    Returns:
        For each input, options.per_input hypotheses.
    """
    xp, processors = namespace(src), build_processors(options)
    limits = xp.astype(max_lengths(src_lengths, options.max_length, cap), xp.int64)  # (B,) on src's device
    if options.strategy == "ctc":
        return [[Hypothesis(tokens, math.fsum(log_probs), log_probs, None)] for tokens, log_probs in
                best_paths(model, src, src_lengths)]
    ctc_weight = given(options.ctc_weight, getattr(model, "ctc_weight", 0.0))
    if ctc_weight and options.strategy != "sample":  # joint greedy and beam search
        model = JointDecoder(ctc_head_of(model, "ctc_weight"), ctc_weight)
    if options.strategy == "beam":
        decoded = beam_search(model, src, src_lengths, limits, processors, given(options.beam_size, DEFAULT_BEAM_SIZE),
                              given(options.length_penalty, 1.0), given(options.n_best, 1))
    elif options.strategy == "sample":
        generator = generator if generator is not None else xp.random_source(options.seed)
        decoded = sample(model, src, src_lengths, limits, processors, given(options.num_samples, 1), generator)
    else:
        decoded = greedy(model, src, src_lengths, limits, processors)
    return _hypotheses(decoded, src_lengths, options.per_input)


def max_lengths(src_lengths: Array, max_length: int = 0, cap: int = 0) -> Array:
    """Output tokens allowed per sentence (B,), </s> included: max_length, or when 0 ceil(a * S) + b, at most cap
    (when above 0; see `options.output_cap`)."""
    xp = namespace(src_lengths)
    if max_length:
        return xp.full(tuple(src_lengths.shape), max_length, xp.int64)
    ratio, offset = RELATIVE_MAX_LENGTH
    relative = xp.astype(-(src_lengths * -ratio // 1), xp.int64) + offset  # ceil(a * S) + b
    return xp.where(relative > cap, cap, relative) if cap else relative


def _limits(max_length: int | Array, src: Array, src_lengths: Array) -> Array:
    limits = max_lengths(src_lengths, max_length) if isinstance(max_length, int) else max_length
    xp = namespace(src)
    return xp.astype(limits, xp.int64)


def _hypotheses(decoded: Decoded, src_lengths: Array, per_input: int) -> list[list[Hypothesis]]:
    """Split the rows (input b's hypotheses are rows b * per_input ...) into Hypothesis lists, one per input."""
    tokens, log_probs = decoded.tokens.tolist(), decoded.token_log_probs.tolist()
    scores, lengths, sources = decoded.scores.tolist(), decoded.lengths.tolist(), src_lengths.tolist()
    attention = None if decoded.attention is None else namespace(decoded.attention).on_host(decoded.attention)
    rows = [Hypothesis(tokens[row][:length], scores[row], log_probs[row][:length],
                       None if attention is None else attention[row, :length, :sources[row // per_input]])
            for row, length in enumerate(lengths)]
    return [rows[start:start + per_input] for start in range(0, len(rows), per_input)]


# ---- greedy and sampling: one token per row and step

def greedy(model: StepModel[Any, Any], src: Array, src_lengths: Array, max_length: int | Array,
           processors: Sequence[LogitsProcessor] = DEFAULT_PROCESSORS) -> Decoded:
    """Pick the most likely allowed token at every step, for the whole batch at once.

    Args:
        src, src_lengths: source ids (B, S) and lengths (B,).
        max_length: output tokens allowed, </s> included: one for all, 0 for the relative default, or (B,).
        processors: what may be chosen; by default anything but <pad> and <s>.
    """
    return finish(stream(model, src, src_lengths, max_length, processors))


def sample(model: StepModel[Any, Any], src: Array, src_lengths: Array, max_length: int | Array,
           processors: Sequence[LogitsProcessor] = DEFAULT_PROCESSORS, num_samples: int = 1,
           generator: Any = None) -> Decoded:
    """Draw every token from the processed distribution; rows b * num_samples + j are input b's samples.

    The encoder runs once per input; its memory is then repeated num_samples times.
    """
    return finish(stream(model, src, src_lengths, max_length, processors, num_samples, generator, draw=True))


def stream(model: StepModel[Any, Any], src: Array, src_lengths: Array, max_length: int | Array,
           processors: Sequence[LogitsProcessor] = DEFAULT_PROCESSORS, num_samples: int = 1,
           generator: Any = None, draw: bool = False) -> Generator[Array, None, Decoded]:
    """`greedy` (or with draw `sample`) one step at a time: yields the tokens (N,) chosen at each step as soon as
    they are chosen (<pad> for rows already finished) and returns the same Decoded as those functions."""
    xp = namespace(src)
    with xp.no_grad():
        memory = model.encode(src, src_lengths)
        state = model.init_state(memory)
    limits = _limits(max_length, src, src_lengths)
    choose: Callable[[Array], Array] = partial(xp.argmax, axis=-1)
    if draw:
        expand = xp.arange(src.shape[0] * num_samples) // num_samples  # (B * N,): each input num_samples times
        memory, state, limits = memory.index_select(expand), state.index_select(expand), limits[expand]
        source = generator if generator is not None else xp.random_source(None)
        choose = partial(_draw, xp, source)
    return (yield from _steps(xp, model, memory, state, limits, processors, choose))


def finish(steps: Generator[Array, None, Decoded]) -> Decoded:
    """Run the steps to their end; what they return."""
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value


def _draw(xp: Arrays, source: Any, scores: Array) -> Array:
    """Sample from softmax(scores) as argmax of p / E with E ~ Exp(1): a row where everything is banned still
    gives a token instead of an error."""
    race = xp.exponential(tuple(scores.shape), source)  # (N, V)
    return xp.argmax(scores - xp.log(xp.where(race < 1e-30, 1e-30, race)), axis=-1)


def _steps(xp: Arrays, model: StepModel[Any, Any], memory: Reorderable, state: StepState, limits: Array,
           processors: Sequence[LogitsProcessor], choose: Callable[[Array], Array]
           ) -> Generator[Array, None, Decoded]:
    """Advance each row one chosen token per step until it produced </s> or reached its limit (N,); yields each
    step's tokens (N,)."""
    rows, steps = limits.shape[0], int(limits.max())
    tokens = xp.full((rows,), BOS_ID, xp.int64)
    history = xp.full((rows, steps), PAD_ID, xp.int64)  # (N, T)
    token_log_probs = xp.full((rows, steps), 0.0, xp.float32)  # (N, T)
    lengths, finished = xp.full((rows,), 0, xp.int64), xp.full((rows,), False, xp.bool)
    attention = []
    for step in range(steps):
        with xp.no_grad():
            logits, state = model.step(tokens, state, memory)
        logits = xp.astype(logits, xp.float32)  # (N, V)
        tokens = xp.where(finished, PAD_ID, choose(_process(processors, logits, history[:, :step])))  # (N,)
        history[:, step] = tokens
        yield tokens
        chosen = xp.take_along_axis(xp.log_softmax(logits), tokens[:, None])[:, 0]  # (N,)
        token_log_probs[:, step] = xp.where(finished, 0.0, chosen)
        if state.attention is not None:
            attention.append(xp.astype(state.attention, xp.float32))
        lengths += ~finished
        finished |= (tokens == EOS_ID) | (lengths >= limits)
        if bool(finished.all()):
            break
    width = step + 1
    weights = xp.stack(attention, axis=1) if attention else None  # (N, T, S)
    log_probs = token_log_probs[:, :width]
    return Decoded(history[:, :width], xp.sum(log_probs, axis=-1), weights, log_probs, lengths)


# ---- beam search: the K beams of every sentence still searched advance as one batch

SCORING_CHUNK = 1 << 20  # elements of the (rows, V) scores handled at once: a few MB, so that they stay in cache


def beam_search(model: StepModel[Any, Any], src: Array, src_lengths: Array, max_length: int | Array,
                processors: Sequence[LogitsProcessor] = DEFAULT_PROCESSORS, beam_size: int = 5,
                length_penalty: float = 1.0, n_best: int = 1) -> Decoded:
    """Keep the beam_size most likely prefixes of each sentence; return its n_best finished hypotheses, best first.

    The encoder and the first step run once per sentence; their results are repeated K times. Hypotheses are ranked by
    log p / ((5 + length) / 6) ** length_penalty (GNMT; 0 ranks by log p). A sentence is done when it has n_best
    finished hypotheses that no live beam can beat, or at its maximum length; its rows then leave the batch.

    Args:
        src, src_lengths: source ids (B, S) and lengths (B,).
        max_length: output tokens allowed, </s> included: one for all, 0 for the relative default, or (B,).
        processors: what may be chosen; by default anything but <pad> and <s>.

    Returns:
        Rows b * n_best + i: sentence b's i-th best hypothesis; scores are total log-probabilities.
    """
    xp = namespace(src)
    with xp.no_grad():
        memory = model.encode(src, src_lengths)
        state = model.init_state(memory)
    beams = _Beams(xp, _limits(max_length, src, src_lengths), beam_size, n_best, length_penalty)
    tokens = xp.full((src.shape[0],), BOS_ID, xp.int64)  # (B,): a sentence's K beams start alike
    for step in range(int(beams.limits.max())):
        with xp.no_grad():  # (A*K, V) for the A sentences still searched; (B, V) first
            logits, state = model.step(tokens, state, memory)
        if not step:  # the first step ran once per sentence: its results stand for all K beams
            expand = xp.arange(src.shape[0] * beam_size) // beam_size  # (B*K,)
            logits, state, memory = logits[expand], state.index_select(expand), memory.index_select(expand)
        rows, tokens, staying = beams.advance(step, logits, state.attention, processors)
        if not rows.shape[0]:
            break
        state = state.index_select(rows)
        if staying is not None:
            memory = memory.index_select(staying)
    return beams.best_hypotheses()


def _penalty(length: Array | int, alpha: float) -> Array | float:
    """GNMT length penalty ((5 + length) / 6) ** alpha."""
    return ((5.0 + length) / 6.0) ** alpha


def _best_extensions(xp: Arrays, logits: Array, scores: Array, history: Array,
                     processors: Sequence[LogitsProcessor], count: int) -> tuple[Array, Array, Array]:
    """The `count` best one-token extensions of each sentence's K live beams, from their logits (A*K, V) and
    log-probabilities (A, K): total log-probabilities (A, count), indices into the sentence's K*V extensions
    (A, count) and log-probabilities of the added tokens (A, count).

    Whole sentences are scored in chunks of about SCORING_CHUNK elements, so that the (rows, V) log-probabilities,
    processed and total scores stay in cache instead of each making a trip through memory.
    """
    sentences, beam_size = scores.shape
    extensions = beam_size * logits.shape[1]
    per_chunk = max(1, SCORING_CHUNK // extensions)
    parts = []
    for first in range(0, sentences, per_chunk):
        rows = slice(first * beam_size, (first + per_chunk) * beam_size)
        log_probs = xp.log_softmax(xp.astype(logits[rows], xp.float32))  # (c*K, V)
        totals = _process(processors, log_probs, history[rows]) + scores[first:first + per_chunk].reshape(-1, 1)
        top, index = xp.top(totals.reshape(-1, extensions), count)  # (c, count) of (c, K*V)
        parts.append((top, index, xp.take_along_axis(log_probs.reshape(-1, extensions), index)))
    top, index, added = (xp.concat(columns) for columns in zip(*parts, strict=True))
    return top, index, added


@dataclass
class _BeamStep:
    """What one step leaves for backtracking, per sentence and candidate (B, 2K)."""

    parents: Array  # the live beam (0..K-1) each candidate extends
    tokens: Array
    log_probs: Array  # of the candidate's last token
    totals: Array  # of the whole candidate
    finals: Array  # ranking score where the candidate is kept as a finished hypothesis, else -inf
    keep: Array  # (B, K): the candidates that are the next step's live beams
    attention: Array | None  # (B, 2K, S)


class _Beams:
    """The running state of a batched beam search: live beams, every step's candidates, and which sentences are done.

    The bookkeeping covers all B sentences; the model steps only the K beams of each of the A sentences still
    searched, sentence `searched[a]` in rows a * K ... a * K + K - 1.
    """

    def __init__(self, xp: Arrays, limits: Array, beam_size: int, n_best: int, length_penalty: float) -> None:
        batch = limits.shape[0]
        self.xp, self.limits, self.beam_size, self.n_best, self.alpha = xp, limits, beam_size, n_best, length_penalty
        self.scores = xp.full((batch, beam_size), -math.inf, xp.float32)  # (B, K) log p of the live beams
        self.scores[:, 0] = 0.0  # the K beams start alike: expand only one, or every candidate would come K times
        self.searched = xp.arange(batch)  # (A,) the sentences still searched, in row order
        self.history = xp.full((batch * beam_size, 0), PAD_ID, xp.int64)  # (A*K, t)
        self.best = xp.full((batch, n_best), -math.inf, xp.float32)  # (B, n) ranking scores of the best ended
        self.done = xp.full((batch,), False, xp.bool)
        self.steps: list[_BeamStep] = []

    def advance(self, step: int, logits: Array, attention: Array | None,
                processors: Sequence[LogitsProcessor]) -> tuple[Array, Array, Array | None]:
        """Score every one-token extension of the live beams (logits (A*K, V), attention (A*K, S)), keep the finished
        ones aside and the K best others live.

        Returns, for the A' sentences still searched after this step, the rows their live beams extend (A'*K,) and
        their new tokens (A'*K,); and, when some sentence is done, the rows of the batch that stay (A'*K,), else None.
        """
        xp, searched, vocab = self.xp, self.searched, logits.shape[1]
        top, index, log_probs = _best_extensions(xp, logits, self.scores[searched], self.history, processors,
                                                 2 * self.beam_size)  # (A, 2K)
        parents, tokens = index // vocab, index % vocab  # (A, 2K)
        rows = parents + xp.arange(logits.shape[0] // self.beam_size)[:, None] * self.beam_size  # (A, 2K) of batch
        totals, all_tokens = self._spread(top, -math.inf), self._spread(tokens, PAD_ID)  # (B, 2K)
        ending = (all_tokens == EOS_ID) | (self.limits <= step + 1)[:, None]  # (B, 2K)
        finals = self.finish(step, totals, ending)
        keep = self._go_on(totals, ending)
        weights = None if attention is None else self._spread(xp.astype(attention, xp.float32)[rows], 0.0)
        self.steps.append(_BeamStep(self._spread(parents, 0), all_tokens, self._spread(log_probs, 0.0), totals,
                                    finals, keep, weights))  # weights (B, 2K, S)
        self._update_done(step)
        going_on = ~self.done[searched]  # (A,)
        live = keep[searched][going_on]  # (A', K)
        live_rows = xp.take_along_axis(rows[going_on], live).reshape(-1)
        live_tokens = xp.take_along_axis(tokens[going_on], live).reshape(-1)
        self.history = xp.concat([self.history[live_rows], live_tokens[:, None]], axis=1)
        if bool(going_on.all()):
            return live_rows, live_tokens, None
        self.searched = searched[going_on]
        staying = xp.arange(logits.shape[0]).reshape(-1, self.beam_size)[going_on].reshape(-1)
        return live_rows, live_tokens, staying

    def _spread(self, values: Array, fill: float) -> Array:
        """Values (A, ...) of the sentences searched as rows (B, ...) of the whole batch, fill for the others."""
        batch = self.done.shape[0]
        if values.shape[0] == batch:  # all are searched
            return values
        spread = self.xp.full((batch, *values.shape[1:]), fill, values.dtype)
        spread[self.searched] = values
        return spread

    def finish(self, step: int, top: Array, ending: Array) -> Array:
        """Ranking scores (B, 2K) of the ending candidates among the K best (else -inf); updates the n best."""
        xp = self.xp
        first_k = xp.arange(top.shape[1]) < self.beam_size  # (2K,)
        finals = xp.where(ending & first_k, top / _penalty(step + 1, self.alpha), -math.inf)  # (B, 2K)
        self.best = xp.top(xp.concat([self.best, finals], axis=1), self.n_best)[0]  # (B, n)
        return finals

    def _go_on(self, top: Array, ending: Array) -> Array:
        """The K best candidates that do not end (B, K), in rank order; they become the live beams."""
        xp, width = self.xp, top.shape[1]
        ranks = xp.arange(width) + xp.astype(ending, xp.int64) * width  # (B, 2K) the ending ones last
        keep = xp.top(-ranks, self.beam_size)[1]  # (B, K)
        self.scores = xp.take_along_axis(top, keep)
        return keep

    def _update_done(self, step: int) -> None:
        """A sentence is done at its limit, or when no live beam can beat its n-th best finished hypothesis."""
        xp = self.xp
        longest = self.limits if self.alpha > 0 else xp.full(tuple(self.limits.shape), step + 2, xp.int64)
        bound = xp.top(self.scores, 1)[0][:, 0] / _penalty(xp.astype(longest, xp.float32), self.alpha)  # (B,)
        self.done |= (self.limits <= step + 1) | (self.best[:, -1] >= bound)  # log p only falls from the bound
        self.scores = xp.where(self.done[:, None], -math.inf, self.scores)

    def best_hypotheses(self) -> Decoded:
        """The n best finished hypotheses of each sentence, rows b * n + i, best first."""
        xp = self.xp
        finals = xp.stack([record.finals for record in self.steps], axis=1)  # (B, T, 2K)
        batch, steps, width = finals.shape
        picked = xp.top(finals.reshape(batch, -1), self.n_best)[1]  # (B, n)
        ends, candidates = picked // width, picked % width  # (B, n): the step and candidate each ends at
        totals = xp.stack([record.totals for record in self.steps], axis=1).reshape(batch, -1)
        totals = xp.take_along_axis(totals, picked)
        tokens, log_probs, attention = self._backtrack(ends, candidates)
        return Decoded(tokens.reshape(-1, steps), totals.reshape(-1), attention, log_probs.reshape(-1, steps),
                       (ends + 1).reshape(-1))

    def _backtrack(self, ends: Array, candidates: Array) -> tuple[Array, Array, Array | None]:
        """Token ids and log-probabilities (B, n, T) and attention (B*n, T, S) of the hypotheses that end at
        (ends, candidates) (B, n), read back from the last step through each candidate's parent."""
        xp, steps = self.xp, len(self.steps)
        shape = (*ends.shape, steps)
        tokens, log_probs = xp.full(shape, PAD_ID, xp.int64), xp.full(shape, 0.0, xp.float32)
        sentences = xp.arange(ends.shape[0])[:, None]  # (B, 1)
        weights, current = [], candidates
        for step in reversed(range(steps)):
            record, outside = self.steps[step], ends < step  # (B, n) hypotheses that ended before this step
            current = xp.where(ends == step, candidates, current)  # (B, n) each hypothesis' candidate here
            tokens[:, :, step] = xp.where(outside, PAD_ID, xp.take_along_axis(record.tokens, current))
            log_probs[:, :, step] = xp.where(outside, 0.0, xp.take_along_axis(record.log_probs, current))
            if record.attention is not None:  # (B, n, S)
                weights.append(xp.where(outside[:, :, None], 0.0, record.attention[sentences, current]))
            if step:
                current = xp.take_along_axis(self.steps[step - 1].keep, xp.take_along_axis(record.parents, current))
        attention = xp.stack(weights[::-1], axis=2) if weights else None  # (B, n, T, S)
        return tokens, log_probs, None if attention is None else attention.reshape(-1, steps, attention.shape[3])
