"""The search written once: its array operations, its processors and its strategies give the same results on numpy
arrays (the torch-free runtime) as on torch tensors (PyTorch models), driven by one random step model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from seq2seq.data.vocab import BOS_ID, EOS_ID, PAD_ID
from seq2seq.decoding import search
from seq2seq.decoding.arrays import namespace
from seq2seq.decoding.numpy_arrays import NumpyArrays
from seq2seq.decoding.options import DecodingOptions, processor_specs
from seq2seq.decoding.scoring import stepwise_nll
from seq2seq.decoding.torch_arrays import TorchArrays

VOCAB, HIDDEN = 17, 8
CPU = TorchArrays(torch.device("cpu"))
NUMPY = NumpyArrays()


def pair(array: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
    return array, torch.from_numpy(array.copy())


def assert_same(theirs: Any, mine: Any) -> None:
    """A numpy result and a torch result are equal: same dtype kind, same shape, same values."""
    if isinstance(theirs, tuple):
        for part, other in zip(theirs, mine, strict=True):
            assert_same(part, other)
        return
    expected = mine.numpy() if isinstance(mine, torch.Tensor) else mine
    assert theirs.dtype.kind == expected.dtype.kind and theirs.shape == expected.shape
    assert np.array_equal(theirs, expected)


RANDOM = np.random.default_rng(0)
SCORES = RANDOM.standard_normal((4, 9)).astype(np.float32)
INDEX = RANDOM.integers(0, 9, (4, 3))
OPERATIONS: dict[str, Callable[[Any, Any, Any], Any]] = {
    "full": lambda xp, scores, index: xp.full((2, 3), 1.5, xp.float32),
    "full-bool": lambda xp, scores, index: xp.full((3,), True, xp.bool),
    "arange": lambda xp, scores, index: xp.arange(5),
    "astype": lambda xp, scores, index: xp.astype(scores > 0, xp.int64),
    "where": lambda xp, scores, index: xp.where(scores > 0, -np.inf, scores),
    "where-arrays": lambda xp, scores, index: xp.where(index > 4, index, index * 2),
    "concat": lambda xp, scores, index: xp.concat([scores, scores[:1]]),
    "concat-axis": lambda xp, scores, index: xp.concat([scores, scores[:, :2]], axis=1),
    "stack": lambda xp, scores, index: xp.stack([scores, scores], axis=1),
    "sum": lambda xp, scores, index: xp.sum(index, axis=-1),  # of integers: floats only within rounding
    "cumulative_sum": lambda xp, scores, index: xp.cumulative_sum(index, axis=-1),
    "argmax": lambda xp, scores, index: xp.argmax(scores, axis=-1),
    "top": lambda xp, scores, index: xp.top(scores, 3),
    "top-all": lambda xp, scores, index: xp.top(scores, 9),
    "take_along_axis": lambda xp, scores, index: xp.take_along_axis(scores, index),
    "on_host": lambda xp, scores, index: xp.on_host(scores),
    "padded-ids": lambda xp, scores, index: xp.padded([[3, 1, 4], [1], [5, 9]], PAD_ID, xp.int64),
    "padded-frames": lambda xp, scores, index: xp.padded([scores[:1], scores[1:4], scores[:2]], 0.0, xp.float32),
}
CLOSE = {  # transcendental functions: equal within float32 rounding
    "log": lambda xp, scores, index: xp.log(scores * scores + 1),
    "softmax": lambda xp, scores, index: xp.softmax(scores),
    "log_softmax": lambda xp, scores, index: xp.log_softmax(scores),
    "logsumexp": lambda xp, scores, index: xp.logsumexp(scores),
    "logsumexp-axis": lambda xp, scores, index: xp.logsumexp(scores, axis=0),
}


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_every_operation_is_equal_on_both_backends(name: str) -> None:
    operation = OPERATIONS[name]
    assert_same(operation(NUMPY, SCORES, INDEX), operation(CPU, torch.from_numpy(SCORES), torch.from_numpy(INDEX)))


@pytest.mark.parametrize("name", list(CLOSE))
def test_logarithms_are_equal_within_rounding(name: str) -> None:
    theirs, mine = CLOSE[name](NUMPY, SCORES, INDEX), CLOSE[name](CPU, torch.from_numpy(SCORES), INDEX)
    assert theirs.dtype == np.float32 and np.abs(theirs - mine.numpy()).max() < 1e-6


def test_rows_are_padded_at_the_end() -> None:
    """A model's src and src_lengths from rows of ids, or of frames (T, F)."""
    src, lengths = NUMPY.padded([[3, 1, 4], [1]], PAD_ID, NUMPY.int64)
    assert src.tolist() == [[3, 1, 4], [1, PAD_ID, PAD_ID]] and lengths.tolist() == [3, 1]
    frames, lengths = NUMPY.padded([SCORES[:1], SCORES[1:3]], 0.0, NUMPY.float32)
    assert frames.shape == (2, 2, 9) and lengths.tolist() == [1, 2]
    assert np.array_equal(frames[0], np.concatenate([SCORES[:1], np.zeros((1, 9), np.float32)]))


def test_logsumexp_is_minus_infinity_only_where_every_value_is() -> None:
    """What an ensemble's mean needs where some or all of its members give a token no probability."""
    scores = SCORES.copy()
    scores[1, :] = scores[2, 3] = -np.inf
    theirs, mine = NUMPY.logsumexp(scores), CPU.logsumexp(torch.from_numpy(scores)).numpy()
    assert theirs.dtype == np.float32 and theirs[1] == -np.inf and np.isfinite(np.delete(theirs, 1)).all()
    np.testing.assert_allclose(theirs, mine, atol=1e-6)


def test_random_draws_follow_the_seed() -> None:
    """Both draw float32 Exp(1) values from a generator seeded by the options' seed: the same seed, the same draws."""
    for xp in (NUMPY, CPU):
        first, again = (xp.exponential((3, 4), xp.random_source(5)) for _ in range(2))
        assert np.array_equal(np.asarray(first), np.asarray(again)) and float(first.min()) >= 0
        assert xp.astype(first, xp.float32).dtype == first.dtype
    assert CPU.random_source(None) is None  # unseeded: torch's global generator, as before


def test_the_namespace_follows_the_array() -> None:
    assert isinstance(namespace(np.zeros(2)), NumpyArrays)
    torch_arrays = namespace(torch.zeros(2))
    assert isinstance(torch_arrays, TorchArrays) and torch_arrays.device == torch.device("cpu")


def test_every_processor_is_equal_on_both_backends() -> None:
    """For every knob that picks one, a processor gives bit-identical scores on numpy and on torch."""
    scores, history = pair(RANDOM.standard_normal((6, 30)).astype(np.float32)), pair(RANDOM.integers(4, 30, (6, 7)))
    options = [DecodingOptions(min_length=9, no_repeat_ngram_size=2, ban_unk=True),
               DecodingOptions(strategy="sample", temperature=0.7, top_k=5, top_p=0.8),
               DecodingOptions(no_repeat_ngram_size=1), DecodingOptions(no_repeat_ngram_size=3),
               DecodingOptions(strategy="sample", top_k=40, top_p=0.3)]
    for option in options:
        for name, values in processor_specs(option):
            processor = search.PROCESSORS[name]
            assert_same(processor(scores[0], history[0], **values), processor(scores[1], history[1], **values))


def test_repeated_ngrams_are_blocked() -> None:
    history = np.array([[5, 6, 7, 5, 6], [5, 5, 5, 5, 8]])
    blocked = search.block_repeated_ngrams(np.zeros((2, 10), dtype=np.float32), history, 3)
    assert np.isinf(blocked[0]).nonzero()[0].tolist() == [7] and not np.isinf(blocked[1]).any()
    assert np.isinf(search.block_repeated_ngrams(np.zeros((2, 10), dtype=np.float32), history, 1)).sum() == 5


# ---- one random step model, written over numpy and torch with the same weights

@dataclass
class Rows:
    """Arrays with a leading batch axis: the toy model's memory and state, reordered together."""

    keys: Any  # (B, S, H)
    mask: Any  # (B, S)

    def index_select(self, index: Any) -> Rows:
        return Rows(self.keys[index], self.mask[index])


@dataclass
class ToyState:
    hidden: Any  # (B, H)
    attention: Any  # (B, S)

    def index_select(self, index: Any) -> ToyState:
        return ToyState(self.hidden[index], self.attention[index])


WEIGHTS = {name: RANDOM.standard_normal(shape) for name, shape in
           {"source": (VOCAB, HIDDEN), "target": (VOCAB, HIDDEN), "recurrent": (HIDDEN, HIDDEN),
            "context": (HIDDEN, HIDDEN), "output": (HIDDEN, VOCAB)}.items()}


class ToyModel:
    """A random recurrent step model with dot attention, run by lib (numpy or torch) in float64."""

    def __init__(self, lib: ModuleType) -> None:
        self.lib = lib
        self.weights = {name: lib.asarray(value.copy()) for name, value in WEIGHTS.items()}
        self.weights["output"][:, EOS_ID] += 1.5  # some hypotheses end early, some run to their limit

    def encode(self, src: Any, src_lengths: Any) -> Rows:
        positions = self.lib.asarray(np.arange(src.shape[1]))
        return Rows(self.lib.tanh(self.weights["source"][src]), positions[None, :] < src_lengths[:, None])

    def init_state(self, memory: Rows) -> ToyState:
        return ToyState(memory.keys[:, 0] @ self.weights["recurrent"], memory.keys[:, :, 0] * 0)

    def step(self, tokens: Any, state: ToyState, memory: Rows) -> tuple[Any, ToyState]:
        lib = self.lib
        energies = lib.exp(lib.einsum("bsh,bh->bs", memory.keys, state.hidden)) * memory.mask  # (B, S)
        attention = energies / energies.sum(-1)[:, None]
        context = lib.einsum("bs,bsh->bh", attention, memory.keys)  # (B, H)
        hidden = lib.tanh(self.weights["target"][tokens] + state.hidden @ self.weights["recurrent"]
                          + context @ self.weights["context"])
        return 2 * hidden @ self.weights["output"], ToyState(hidden, attention)


def sources() -> tuple[tuple[np.ndarray, np.ndarray], tuple[torch.Tensor, torch.Tensor]]:
    src = np.random.default_rng(1).integers(4, VOCAB, (6, 7))
    lengths = np.array([7, 3, 5, 1, 6, 2])
    src[np.arange(7)[None, :] >= lengths[:, None]] = PAD_ID
    return (src, lengths), (torch.from_numpy(src.copy()), torch.from_numpy(lengths.copy()))


DECODINGS = [DecodingOptions(), DecodingOptions(no_repeat_ngram_size=2, min_length=3, ban_unk=True),
             DecodingOptions(strategy="beam", beam_size=4, n_best=3),
             DecodingOptions(strategy="beam", beam_size=3, length_penalty=0.0, n_best=2, max_length=9),
             DecodingOptions(strategy="beam", beam_size=5, no_repeat_ngram_size=2, min_length=2),
             DecodingOptions(strategy="beam", beam_size=1)]


@pytest.mark.parametrize("options", DECODINGS, ids=["greedy", "greedy-constrained", "beam-nbest3", "beam-lp0",
                                                    "beam-constrained", "beam-1"])
def test_greedy_and_beam_give_the_same_hypotheses_on_both_backends(options: DecodingOptions) -> None:
    """Same tokens, n-best order and lengths; log-probabilities and attention within 1e-6."""
    (src, lengths), (tensor_src, tensor_lengths) = sources()
    theirs = search.decode(ToyModel(np), src, lengths, options)
    mine = search.decode(ToyModel(torch), tensor_src, tensor_lengths, options)
    assert [[h.tokens for h in found] for found in theirs] == [[h.tokens for h in found] for found in mine]
    assert len({len(h.tokens) for found in mine for h in found}) > 2  # hypotheses of many lengths
    for found, others in zip(theirs, mine, strict=True):
        for hypothesis, other in zip(found, others, strict=True):
            assert abs(hypothesis.log_prob - other.log_prob) < 1e-6 * abs(other.log_prob)  # a sum of T terms
            assert np.abs(np.subtract(hypothesis.token_log_probs, other.token_log_probs)).max() < 1e-6
            assert np.abs(hypothesis.attention - other.attention.numpy()).max() < 1e-6


def test_streaming_yields_the_same_tokens_on_both_backends() -> None:
    (src, lengths), (tensor_src, tensor_lengths) = sources()
    theirs = list(search.stream(ToyModel(np), src, lengths, 12))
    mine = list(search.stream(ToyModel(torch), tensor_src, tensor_lengths, 12))
    assert len(theirs) == len(mine) > 1
    for step, other in zip(theirs, mine, strict=True):
        assert_same(step, other)


def test_each_step_gives_equal_probabilities_after_the_processors() -> None:
    """Along one sampled continuation, every step's processed distribution (temperature, top-k, top-p, n-grams) is
    equal within 1e-6 on both backends, with the same support."""
    options = DecodingOptions(strategy="sample", temperature=0.8, top_k=6, top_p=0.9, no_repeat_ngram_size=2)
    processors = search.build_processors(options)
    runs = []
    for lib, (src, lengths) in zip((np, torch), sources(), strict=True):
        model = ToyModel(lib)
        memory = model.encode(src, lengths)
        runs.append([model, memory, model.init_state(memory)])
    history, tokens, draws = np.zeros((6, 0), dtype=np.int64), np.full(6, BOS_ID), np.random.default_rng(2)
    for _ in range(8):
        probabilities = []
        for run, (history_in, tokens_in) in zip(runs, zip(pair(history), pair(tokens), strict=True), strict=True):
            model, memory, state = run
            logits, run[2] = model.step(tokens_in, state, memory)
            xp = namespace(logits)
            scores = xp.astype(logits, xp.float32)
            for process in processors:
                scores = process(scores, history_in)
            probabilities.append(np.asarray(xp.softmax(scores)))
        theirs, mine = probabilities
        assert np.array_equal(theirs > 0, mine > 0) and np.abs(theirs - mine).max() < 1e-6
        tokens = np.array([draws.choice(VOCAB, p=row / row.sum()) for row in mine.astype(np.float64)])
        history = np.concatenate([history, tokens[:, None]], axis=1)


def test_seeded_sampling_repeats_itself_on_both_backends() -> None:
    """A seed gives the same samples run after run; the generators differ, so numpy's draws are not torch's."""
    options = DecodingOptions(strategy="sample", seed=4, num_samples=3, temperature=1.2)
    for lib, (src, lengths) in zip((np, torch), sources(), strict=True):
        first, again = (search.decode(ToyModel(lib), src, lengths, options) for _ in range(2))
        assert [[h.tokens for h in found] for found in first] == [[h.tokens for h in found] for found in again]
        assert all(len(found) == 3 for found in first)


def test_scoring_the_greedy_outputs_gives_their_log_probabilities_on_both_backends() -> None:
    """Fed back one step at a time, the greedy outputs cost what the search said they did: the negative sum of their
    log-probabilities, counting every token up to and with </s> and none of the padding after it."""
    for lib, (src, lengths) in zip((np, torch), sources(), strict=True):
        model, xp = ToyModel(lib), namespace(src)
        found = search.decode(model, src, lengths, DecodingOptions(max_length=9))
        outputs = [hypotheses[0].tokens for hypotheses in found]
        targets, _ = xp.padded(outputs, PAD_ID, xp.int64)
        tokens_in, _ = xp.padded([[BOS_ID, *tokens[:-1]] for tokens in outputs], PAD_ID, xp.int64)
        nll, count = stepwise_nll(model, src, lengths, tokens_in, targets)
        assert count == sum(map(len, outputs)) and len({len(tokens) for tokens in outputs}) > 1
        assert nll == pytest.approx(-sum(hypotheses[0].log_prob for hypotheses in found), rel=1e-6)
