"""Decoding strategies (greedy, beam search, sampling) over the model's encode / init_state / step interface.

Every strategy drives a model only through `encode(src, src_lengths)`, `init_state(memory)` and
`step(tokens, state, memory)`, and expands or reorders rows only through `index_select` on the memory and the state,
so it serves every architecture, and a language model whose `src` is the prompt. The choice of each next token is
shaped by logits processors: small pure functions `(scores, history) -> scores` shared by the strategies.
`decode(model, src, src_lengths, DecodingOptions(...))` is the one entry point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, Self, TypeVar

import torch
from torch import Tensor

from seq2seq.data.vocab import BOS_ID, EOS_ID, PAD_ID
from seq2seq.decoding.options import (  # noqa: F401  (re-exported: DecodingOptions and its rules were defined here)
    BATCH_SIZE,
    DEFAULT_BEAM_SIZE,
    KNOB_STRATEGY,
    RELATIVE_MAX_LENGTH,
    STRATEGIES,
    DecodingOptions,
    Hypothesis,
    processor_specs,
    with_knobs,
)
from seq2seq.decoding.options import given as _given

LogitsProcessor = Callable[[Tensor, Tensor], Tensor]
"""(scores (N, V), history (N, t) of the tokens chosen so far) -> new scores (N, V); never changes its inputs."""


class Reorderable(Protocol):
    """Encoder memory or decoder state: a row per batch entry, reordered or repeated by index_select."""

    def index_select(self, index: Tensor) -> Self: ...


class StepState(Reorderable, Protocol):
    """A decoder state; attention (B, S) holds the last step's attention weights, None without attention."""

    @property
    def attention(self) -> Tensor | None: ...


MemoryT = TypeVar("MemoryT", bound=Reorderable)
StateT = TypeVar("StateT", bound=StepState)


class StepModel(Protocol[MemoryT, StateT]):
    """What decoding needs from a model (a Seq2Seq, a LanguageModel or an Ensemble)."""

    def encode(self, src: Tensor, src_lengths: Tensor) -> MemoryT: ...

    def init_state(self, memory: MemoryT) -> StateT: ...

    def step(self, tokens: Tensor, state: StateT, memory: MemoryT) -> tuple[Tensor, StateT]: ...


@dataclass
class Decoded:
    """Rows of outputs: ids (N, T) padded after their end, total log-probabilities (N,), per-token log-probabilities
    (N, T), lengths (N,) with </s> and attention weights (N, T, S). N is B times the hypotheses per input."""

    tokens: Tensor
    scores: Tensor
    attention: Tensor | None
    token_log_probs: Tensor
    lengths: Tensor


# ---- logits processors: pure (scores (N, V), history (N, t)) -> scores (N, V)

def ban_tokens(scores: Tensor, history: Tensor, token_ids: Sequence[int]) -> Tensor:
    """The given tokens can never be chosen."""
    banned = scores.clone()
    for token in token_ids:  # a few specials: plain indexing, no index tensor to copy to the device
        banned[:, token] = -math.inf
    return banned


def block_eos_before(scores: Tensor, history: Tensor, min_length: int) -> Tensor:
    """</s> can not be chosen before min_length tokens have been produced."""
    return ban_tokens(scores, history, (EOS_ID,)) if history.size(1) < min_length else scores


def block_repeated_ngrams(scores: Tensor, history: Tensor, size: int) -> Tensor:
    """A token can not complete an n-gram of this size that the row has already produced (all on the device)."""
    if history.size(1) < size:
        return scores
    windows = history.unfold(1, size, 1)  # (N, W, n): every n-gram produced so far
    prefix = history[:, history.size(1) - size + 1:]  # (N, n - 1): what the next token would extend
    seen = (windows[:, :, :-1] == prefix.unsqueeze(1)).all(dim=2)  # (N, W)
    hits = torch.zeros_like(scores).scatter_add_(1, windows[:, :, -1], seen.to(scores.dtype))  # (N, V)
    return scores.masked_fill(hits > 0, -math.inf)


def scale_temperature(scores: Tensor, history: Tensor, temperature: float) -> Tensor:
    """Logits / T: below 1 sharpens the distribution, above 1 flattens it."""
    return scores / temperature


def keep_top_k(scores: Tensor, history: Tensor, k: int) -> Tensor:
    """Only the k highest-scoring tokens stay possible."""
    threshold = scores.topk(min(k, scores.size(1)), dim=1).values[:, -1:]  # (N, 1)
    return scores.masked_fill(scores < threshold, -math.inf)


def keep_top_p(scores: Tensor, history: Tensor, p: float) -> Tensor:
    """Nucleus: only the smallest set of most likely tokens whose probability reaches p stays possible."""
    ranked, order = scores.sort(dim=1, descending=True)  # (N, V)
    probs = ranked.softmax(dim=1)
    outside = probs.cumsum(dim=1) - probs >= p  # the tokens ranked above already hold p
    return scores.masked_fill(torch.zeros_like(outside).scatter(1, order, outside), -math.inf)


def build_processors(options: DecodingOptions) -> list[LogitsProcessor]:
    """The processors the options ask for (`options.processor_specs`), masks first."""
    return [partial(PROCESSORS[name], **values) for name, values in processor_specs(options)]


PROCESSORS: dict[str, Callable[..., Tensor]] = {
    "ban_tokens": ban_tokens, "block_eos_before": block_eos_before, "block_repeated_ngrams": block_repeated_ngrams,
    "scale_temperature": scale_temperature, "keep_top_k": keep_top_k, "keep_top_p": keep_top_p}
"""The processors by the names `options.processor_specs` gives them."""
DEFAULT_PROCESSORS: tuple[LogitsProcessor, ...] = (partial(ban_tokens, token_ids=(PAD_ID, BOS_ID)),)


def _process(processors: Sequence[LogitsProcessor], scores: Tensor, history: Tensor) -> Tensor:
    for processor in processors:
        scores = processor(scores, history)
    return scores


# ---- the entry point

def decode(model: StepModel[Any, Any], src: Tensor, src_lengths: Tensor, options: DecodingOptions,
           generator: torch.Generator | None = None, cap: int = 0) -> list[list[Hypothesis]]:
    """Outputs for each input: n_best (best first) with beam, num_samples (as drawn) with sample, one with greedy.

    Args:
        model: anything with encode / init_state / step.
        src: source (or prompt) ids (B, S), padded with <pad>.
        src_lengths: real lengths (B,).
        options: the strategy and its knobs.
        generator: random source for sampling; by default one seeded with options.seed (when set).
        cap: without options.max_length, the most output tokens of any sentence (0: none).

    Returns:
        For each input, options.per_input hypotheses.
    """
    processors = build_processors(options)
    limits = max_lengths(src_lengths, options.max_length, cap).to(src.device)  # (B,)
    if options.strategy == "beam":
        decoded = beam_search(model, src, src_lengths, limits, processors, _given(options.beam_size, DEFAULT_BEAM_SIZE),
                              _given(options.length_penalty, 1.0), _given(options.n_best, 1))
    elif options.strategy == "sample":
        generator = generator or _seeded(options.seed, src.device)
        decoded = sample(model, src, src_lengths, limits, processors, _given(options.num_samples, 1), generator)
    else:
        decoded = greedy(model, src, src_lengths, limits, processors)
    return _hypotheses(decoded, src_lengths, options.per_input)


def max_lengths(src_lengths: Tensor, max_length: int = 0, cap: int = 0) -> Tensor:
    """Output tokens allowed per sentence (B,), </s> included: max_length, or when 0 ceil(a * S) + b, at most cap
    (when above 0; see `options.output_cap`)."""
    if max_length:
        return torch.full_like(src_lengths, max_length)
    ratio, offset = RELATIVE_MAX_LENGTH
    relative = (src_lengths * ratio).ceil().long() + offset
    return relative.clamp(max=cap) if cap else relative


def _seeded(seed: int | None, device: torch.device) -> torch.Generator | None:
    return None if seed is None else torch.Generator(device=device).manual_seed(seed)


def _limits(max_length: int | Tensor, src: Tensor, src_lengths: Tensor) -> Tensor:
    limits = max_length if isinstance(max_length, Tensor) else max_lengths(src_lengths, max_length)
    return limits.to(src.device)


def _hypotheses(decoded: Decoded, src_lengths: Tensor, per_input: int) -> list[list[Hypothesis]]:
    """Split the rows (input b's hypotheses are rows b * per_input ...) into Hypothesis lists, one per input."""
    tokens, log_probs = decoded.tokens.tolist(), decoded.token_log_probs.tolist()
    scores, lengths, sources = decoded.scores.tolist(), decoded.lengths.tolist(), src_lengths.tolist()
    attention = decoded.attention.cpu() if decoded.attention is not None else None
    rows = [Hypothesis(tokens[row][:length], scores[row], log_probs[row][:length],
                       None if attention is None else attention[row, :length, :sources[row // per_input]])
            for row, length in enumerate(lengths)]
    return [rows[start:start + per_input] for start in range(0, len(rows), per_input)]


# ---- greedy and sampling: one token per row and step

@torch.no_grad()
def greedy(model: StepModel[Any, Any], src: Tensor, src_lengths: Tensor, max_length: int | Tensor,
           processors: Sequence[LogitsProcessor] = DEFAULT_PROCESSORS) -> Decoded:
    """Pick the most likely allowed token at every step, for the whole batch at once.

    Args:
        src, src_lengths: source ids (B, S) and lengths (B,).
        max_length: output tokens allowed, </s> included: one for all, 0 for the relative default, or (B,).
        processors: what may be chosen; by default anything but <pad> and <s>.
    """
    return finish(stream(model, src, src_lengths, max_length, processors))


@torch.no_grad()
def sample(model: StepModel[Any, Any], src: Tensor, src_lengths: Tensor, max_length: int | Tensor,
           processors: Sequence[LogitsProcessor] = DEFAULT_PROCESSORS, num_samples: int = 1,
           generator: torch.Generator | None = None) -> Decoded:
    """Draw every token from the processed distribution; rows b * num_samples + j are input b's samples.

    The encoder runs once per input; its memory is then repeated num_samples times.
    """
    return finish(stream(model, src, src_lengths, max_length, processors, num_samples, generator, draw=True))


@torch.no_grad()
def stream(model: StepModel[Any, Any], src: Tensor, src_lengths: Tensor, max_length: int | Tensor,
           processors: Sequence[LogitsProcessor] = DEFAULT_PROCESSORS, num_samples: int = 1,
           generator: torch.Generator | None = None, draw: bool = False) -> Generator[Tensor, None, Decoded]:
    """`greedy` (or with draw `sample`) one step at a time: yields the tokens (N,) chosen at each step as soon as
    they are chosen (<pad> for rows already finished) and returns the same Decoded as those functions."""
    memory = model.encode(src, src_lengths)
    state = model.init_state(memory)
    limits = _limits(max_length, src, src_lengths)
    choose: Callable[[Tensor], Tensor] = _most_likely
    if draw:
        expand = torch.arange(src.size(0), device=src.device).repeat_interleave(num_samples)  # (B * N,)
        memory, state = memory.index_select(expand), state.index_select(expand)
        limits, choose = limits.index_select(0, expand), partial(_draw, generator=generator)
    return (yield from _steps(model, memory, state, limits, processors, choose))


def finish(steps: Generator[Tensor, None, Decoded]) -> Decoded:
    """Run the steps to their end; what they return."""
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value


def _most_likely(scores: Tensor) -> Tensor:
    return scores.argmax(dim=-1)


def _draw(scores: Tensor, generator: torch.Generator | None) -> Tensor:
    """Sample from softmax(scores) as argmax of p / E with E ~ Exp(1): a row where everything is banned still
    gives a token instead of an error."""
    race = torch.empty_like(scores).exponential_(generator=generator).clamp_min_(1e-30).log()  # (N, V)
    return (scores - race).argmax(dim=-1)


def _steps(model: StepModel[Any, Any], memory: Reorderable, state: StepState, limits: Tensor,
           processors: Sequence[LogitsProcessor], choose: Callable[[Tensor], Tensor]
           ) -> Generator[Tensor, None, Decoded]:
    """Advance each row one chosen token per step until it produced </s> or reached its limit (N,); yields each
    step's tokens (N,)."""
    rows, steps = limits.size(0), int(limits.max())
    tokens = torch.full((rows,), BOS_ID, dtype=torch.long, device=limits.device)
    history = torch.full((rows, steps), PAD_ID, dtype=torch.long, device=limits.device)  # (N, T)
    token_log_probs = torch.zeros(rows, steps, device=limits.device)  # (N, T)
    lengths, finished = torch.zeros_like(limits), torch.zeros(rows, dtype=torch.bool, device=limits.device)
    attention = []
    for step in range(steps):
        logits, state = model.step(tokens, state, memory)
        logits = logits.float()  # (N, V)
        tokens = choose(_process(processors, logits, history[:, :step])).masked_fill(finished, PAD_ID)  # (N,)
        history[:, step] = tokens
        yield tokens
        chosen = logits.log_softmax(dim=1).gather(1, tokens.unsqueeze(1)).squeeze(1)  # (N,)
        token_log_probs[:, step] = chosen.masked_fill(finished, 0.0)
        if state.attention is not None:
            attention.append(state.attention.float())
        lengths += ~finished
        finished |= (tokens == EOS_ID) | (lengths >= limits)
        if bool(finished.all()):
            break
    width = step + 1
    weights = torch.stack(attention, dim=1) if attention else None  # (N, T, S)
    return Decoded(history[:, :width], token_log_probs[:, :width].sum(dim=1), weights, token_log_probs[:, :width],
                   lengths)


# ---- beam search: the K beams of every sentence still searched advance as one batch

SCORING_CHUNK = 1 << 20  # elements of the (rows, V) scores handled at once: a few MB, so that they stay in cache


@torch.no_grad()
def beam_search(model: StepModel[Any, Any], src: Tensor, src_lengths: Tensor, max_length: int | Tensor,
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
    memory = model.encode(src, src_lengths)
    state = model.init_state(memory)
    beams = _Beams(_limits(max_length, src, src_lengths), beam_size, n_best, length_penalty)
    tokens = torch.full((src.size(0),), BOS_ID, device=src.device)  # (B,): a sentence's K beams start alike
    for step in range(int(beams.limits.max())):
        logits, state = model.step(tokens, state, memory)  # (A*K, V) for the A sentences still searched; (B, V) first
        if not step:  # the first step ran once per sentence: its results stand for all K beams
            expand = torch.arange(src.size(0), device=src.device).repeat_interleave(beam_size)  # (B*K,)
            logits, state, memory = (logits.index_select(0, expand), state.index_select(expand),
                                     memory.index_select(expand))
        rows, tokens, staying = beams.advance(step, logits, state.attention, processors)
        if not rows.numel():
            break
        state = state.index_select(rows)
        if staying is not None:
            memory = memory.index_select(staying)
    return beams.best_hypotheses()


def _penalty(length: Tensor | int, alpha: float) -> Tensor | float:
    """GNMT length penalty ((5 + length) / 6) ** alpha."""
    return ((5.0 + length) / 6.0) ** alpha


def _best_extensions(logits: Tensor, scores: Tensor, history: Tensor, processors: Sequence[LogitsProcessor],
                     count: int) -> tuple[Tensor, Tensor, Tensor]:
    """The `count` best one-token extensions of each sentence's K live beams, from their logits (A*K, V) and
    log-probabilities (A, K): total log-probabilities (A, count), indices into the sentence's K*V extensions
    (A, count) and log-probabilities of the added tokens (A, count).

    Whole sentences are scored in chunks of about SCORING_CHUNK elements, so that the (rows, V) log-probabilities,
    processed and total scores stay in cache instead of each making a trip through memory.
    """
    sentences, beam_size = scores.shape
    extensions = beam_size * logits.size(1)
    per_chunk = max(1, SCORING_CHUNK // extensions)
    parts = []
    for first in range(0, sentences, per_chunk):
        rows = slice(first * beam_size, (first + per_chunk) * beam_size)
        log_probs = logits[rows].float().log_softmax(dim=-1)  # (c*K, V)
        totals = _process(processors, log_probs, history[rows]) + scores[first:first + per_chunk].reshape(-1, 1)
        top, index = totals.view(-1, extensions).topk(count, dim=1)  # (c, count) of (c, K*V)
        parts.append((top, index, log_probs.view(-1, extensions).gather(1, index)))
    top, index, added = (torch.cat(columns) for columns in zip(*parts, strict=True))
    return top, index, added


@dataclass
class _BeamStep:
    """What one step leaves for backtracking, per sentence and candidate (B, 2K)."""

    parents: Tensor  # the live beam (0..K-1) each candidate extends
    tokens: Tensor
    log_probs: Tensor  # of the candidate's last token
    totals: Tensor  # of the whole candidate
    finals: Tensor  # ranking score where the candidate is kept as a finished hypothesis, else -inf
    keep: Tensor  # (B, K): the candidates that are the next step's live beams
    attention: Tensor | None  # (B, 2K, S)


class _Beams:
    """The running state of a batched beam search: live beams, every step's candidates, and which sentences are done.

    The bookkeeping covers all B sentences; the model steps only the K beams of each of the A sentences still
    searched, sentence `searched[a]` in rows a * K ... a * K + K - 1.
    """

    def __init__(self, limits: Tensor, beam_size: int, n_best: int, length_penalty: float) -> None:
        batch, device = limits.size(0), limits.device
        self.limits, self.beam_size, self.n_best, self.alpha = limits, beam_size, n_best, length_penalty
        self.scores = torch.full((batch, beam_size), -math.inf, device=device)  # (B, K) log p of the live beams
        self.scores[:, 0] = 0.0  # the K beams start alike: expand only one, or every candidate would come K times
        self.searched = torch.arange(batch, device=device)  # (A,) the sentences still searched, in row order
        self.history = torch.zeros(batch * beam_size, 0, dtype=torch.long, device=device)  # (A*K, t)
        self.best = torch.full((batch, n_best), -math.inf, device=device)  # (B, n) ranking scores of the best ended
        self.done = torch.zeros(batch, dtype=torch.bool, device=device)
        self.steps: list[_BeamStep] = []

    def advance(self, step: int, logits: Tensor, attention: Tensor | None,
                processors: Sequence[LogitsProcessor]) -> tuple[Tensor, Tensor, Tensor | None]:
        """Score every one-token extension of the live beams (logits (A*K, V), attention (A*K, S)), keep the finished
        ones aside and the K best others live.

        Returns, for the A' sentences still searched after this step, the rows their live beams extend (A'*K,) and
        their new tokens (A'*K,); and, when some sentence is done, the rows of the batch that stay (A'*K,), else None.
        """
        searched = self.searched
        top, index, log_probs = _best_extensions(logits, self.scores.index_select(0, searched), self.history,
                                                 processors, 2 * self.beam_size)  # (A, 2K)
        parents, tokens = index // logits.size(1), index % logits.size(1)  # (A, 2K)
        first_rows = torch.arange(0, logits.size(0), self.beam_size, device=logits.device).unsqueeze(1)  # (A, 1)
        rows = parents + first_rows  # (A, 2K) rows of the batch
        totals, all_tokens = self._spread(top, -math.inf), self._spread(tokens, PAD_ID)  # (B, 2K)
        ending = (all_tokens == EOS_ID) | (self.limits <= step + 1).unsqueeze(1)  # (B, 2K)
        finals = self.finish(step, totals, ending)
        keep = self._go_on(totals, ending)
        weights = None if attention is None else self._spread(attention.float()[rows], 0.0)  # (B, 2K, S)
        self.steps.append(_BeamStep(self._spread(parents, 0), all_tokens, self._spread(log_probs, 0.0), totals,
                                    finals, keep, weights))
        self._update_done(step)
        going_on = ~self.done.index_select(0, searched)  # (A,)
        live = keep.index_select(0, searched)[going_on]  # (A', K)
        live_rows, live_tokens = rows[going_on].gather(1, live).view(-1), tokens[going_on].gather(1, live).view(-1)
        self.history = torch.cat([self.history.index_select(0, live_rows), live_tokens.unsqueeze(1)], dim=1)
        if bool(going_on.all()):
            return live_rows, live_tokens, None
        self.searched = searched[going_on]
        staying = torch.arange(logits.size(0), device=logits.device).view(-1, self.beam_size)[going_on].view(-1)
        return live_rows, live_tokens, staying

    def _spread(self, values: Tensor, fill: float) -> Tensor:
        """Values (A, ...) of the sentences searched as rows (B, ...) of the whole batch, fill for the others."""
        if values.size(0) == self.done.size(0):  # all are searched
            return values
        spread = values.new_full((self.done.size(0), *values.shape[1:]), fill)
        return spread.index_copy_(0, self.searched, values)

    def finish(self, step: int, top: Tensor, ending: Tensor) -> Tensor:
        """Ranking scores (B, 2K) of the ending candidates among the K best (else -inf); updates the n best."""
        first_k = torch.arange(top.size(1), device=top.device) < self.beam_size  # (2K,)
        finals = torch.where(ending & first_k, top / _penalty(step + 1, self.alpha), -math.inf)  # (B, 2K)
        self.best = torch.cat([self.best, finals], dim=1).topk(self.n_best, dim=1).values  # (B, n)
        return finals

    def _go_on(self, top: Tensor, ending: Tensor) -> Tensor:
        """The K best candidates that do not end (B, K), in rank order; they become the live beams."""
        width = top.size(1)
        ranks = torch.arange(width, device=top.device) + ending.long() * width  # (B, 2K) the ending ones last
        keep = ranks.topk(self.beam_size, dim=1, largest=False).indices  # (B, K)
        self.scores = top.gather(1, keep)
        return keep

    def _update_done(self, step: int) -> None:
        """A sentence is done at its limit, or when no live beam can beat its n-th best finished hypothesis."""
        longest = self.limits if self.alpha > 0 else torch.full_like(self.limits, step + 2)  # where lp is largest
        bound = self.scores.max(dim=1).values / _penalty(longest, self.alpha)  # (B,) log p only falls from here
        self.done |= (self.limits <= step + 1) | (self.best[:, -1] >= bound)
        self.scores = self.scores.masked_fill(self.done.unsqueeze(1), -math.inf)

    def best_hypotheses(self) -> Decoded:
        """The n best finished hypotheses of each sentence, rows b * n + i, best first."""
        finals = torch.stack([record.finals for record in self.steps], dim=1)  # (B, T, 2K)
        batch, _, width = finals.shape
        picked = finals.view(batch, -1).topk(self.n_best, dim=1).indices  # (B, n)
        ends, candidates = picked // width, picked % width  # (B, n): the step and candidate each ends at
        totals = torch.stack([record.totals for record in self.steps], dim=1).view(batch, -1).gather(1, picked)
        tokens, log_probs, attention = self._backtrack(ends, candidates)
        return Decoded(tokens.flatten(0, 1), totals.view(-1), attention, log_probs.flatten(0, 1),
                       (ends + 1).view(-1))

    def _backtrack(self, ends: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """Token ids and log-probabilities (B, n, T) and attention (B*n, T, S) of the hypotheses that end at
        (ends, candidates) (B, n), read back from the last step through each candidate's parent."""
        shape = (*ends.shape, len(self.steps))
        tokens = torch.full(shape, PAD_ID, dtype=torch.long, device=ends.device)
        log_probs = torch.zeros(shape, device=ends.device)
        weights, current = [], candidates
        for step in reversed(range(len(self.steps))):
            record, outside = self.steps[step], ends < step  # (B, n) hypotheses that ended before this step
            current = torch.where(ends == step, candidates, current)  # (B, n) each hypothesis' candidate here
            tokens[:, :, step] = record.tokens.gather(1, current).masked_fill(outside, PAD_ID)
            log_probs[:, :, step] = record.log_probs.gather(1, current).masked_fill(outside, 0.0)
            if record.attention is not None:
                index = current.unsqueeze(2).expand(-1, -1, record.attention.size(2))  # (B, n, S)
                weights.append(record.attention.gather(1, index).masked_fill(outside.unsqueeze(2), 0.0))
            if step:
                current = self.steps[step - 1].keep.gather(1, record.parents.gather(1, current))
        attention = torch.stack(weights[::-1], dim=2).flatten(0, 1) if weights else None  # (B*n, T, S)
        return tokens, log_probs, attention
