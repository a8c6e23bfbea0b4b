"""CTC in decoding: prefix scores against a sum over every frame path, padded rows against rows alone, numpy against
torch, greedy CTC paths, and the rules of the options."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from seq2seq.data.vocab import BOS_ID, EOS_ID, PAD_ID
from seq2seq.decoding.ctc import BLANK, JointDecoder, best_paths
from seq2seq.decoding.options import DecodingOptions
from seq2seq.decoding.search import decode
from seq2seq.errors import ConfigError

VOCAB = 7  # <pad> (blank), <unk>, <s>, </s> and three labels
LABELS = [token for token in range(VOCAB) if token not in (PAD_ID, BOS_ID, EOS_ID)]  # <unk> is one


@dataclass
class Rows:
    """A memory or state of rows only."""

    values: torch.Tensor | np.ndarray
    mask: torch.Tensor | np.ndarray | None = None
    attention = None

    def index_select(self, index: torch.Tensor | np.ndarray) -> Rows:
        return Rows(self.values[index], None if self.mask is None else self.mask[index])


class FramesModel:
    """A CTC head that says given log-probabilities (B, S, V), beside a decoder whose logits depend on the row only."""

    ctc_weight = 0.5

    def __init__(self, log_probs: torch.Tensor | np.ndarray) -> None:
        self.log_probs = log_probs

    def encode(self, src, src_lengths):  # type: ignore[no-untyped-def]
        steps = src.shape[1]
        positions = np.arange(steps)[None, :] if isinstance(src, np.ndarray) else torch.arange(steps)[None, :]
        return Rows(src, positions < src_lengths[:, None])

    def init_state(self, memory: Rows) -> Rows:
        return Rows(memory.values[:, 0, :])

    def step(self, tokens, state: Rows, memory: Rows):  # type: ignore[no-untyped-def]
        return state.values, state

    def ctc_log_probs(self, memory: Rows):  # type: ignore[no-untyped-def]
        return memory.values


def random_frames(rows: int, steps: int, seed: int = 0) -> torch.Tensor:
    """Log-probabilities of a CTC head that never says <s> or </s> (nothing in training does)."""
    generator = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(rows, steps, VOCAB, generator=generator)
    logits[:, :, [BOS_ID, EOS_ID]] = -math.inf
    return torch.log_softmax(logits, dim=-1)


def collapsed(path: tuple[int, ...]) -> tuple[int, ...]:
    merged = [label for index, label in enumerate(path) if not index or label != path[index - 1]]
    return tuple(label for label in merged if label != BLANK)


def brute_force(log_probs: torch.Tensor) -> tuple[dict[tuple[int, ...], float], dict[tuple[int, ...], float]]:
    """For one utterance (S, V): the probability that the frames spell exactly each output, and that they spell
    something that starts with it (psi), by summing over all V ** S frame paths."""
    probs = log_probs.double().exp().numpy()
    exact: dict[tuple[int, ...], float] = {}
    prefix: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(VOCAB), repeat=len(probs)):
        p = math.prod(probs[frame, label] for frame, label in enumerate(path))
        spelled = collapsed(path)
        exact[spelled] = exact.get(spelled, 0.0) + p
        for end in range(len(spelled) + 1):
            prefix[spelled[:end]] = prefix.get(spelled[:end], 0.0) + p
    return exact, prefix


def joint_scores(model: FramesModel, lengths: list[int], outputs: list[list[int]]) -> list[torch.Tensor]:
    """The CTC part (weight 1) of each step's scores (B, V) as the rows are fed <s> and then outputs[row]."""
    joint = JointDecoder(model, 1.0)
    src = model.log_probs
    memory = joint.encode(src, torch.tensor(lengths))
    state = joint.init_state(memory)
    tokens, found = torch.full((len(lengths),), BOS_ID), []
    for step in range(len(outputs[0]) + 1):
        scores, state = joint.step(tokens, state, memory)
        found.append(scores)
        if step < len(outputs[0]):
            tokens = torch.tensor([output[step] for output in outputs])
    return found


def test_prefix_scores_equal_the_sum_over_every_frame_path() -> None:
    frames = random_frames(1, 5)
    exact, prefix = brute_force(frames[0])
    output = [4, 4, 5]  # a repeated label needs a blank between its two frames
    for step, scores in enumerate(joint_scores(FramesModel(frames), [5], [output])):
        g = tuple(output[:step])
        for label in LABELS:
            expected = prefix.get((*g, label), 0.0) / prefix[g]
            assert math.exp(float(scores[0, label])) == pytest.approx(expected, rel=1e-4, abs=1e-9)
        assert math.exp(float(scores[0, EOS_ID])) == pytest.approx(exact.get(g, 0.0) / prefix[g], rel=1e-4)
        assert scores[0, PAD_ID] == -math.inf and scores[0, BOS_ID] == -math.inf
        assert math.exp(float(scores[0, EOS_ID])) + sum(math.exp(float(scores[0, c])) for c in LABELS) \
            == pytest.approx(1.0, rel=1e-4)  # g ends here or goes on with some label


def test_a_padded_row_scores_as_it_does_alone_and_numpy_as_torch() -> None:
    frames = random_frames(2, 6, seed=1)
    frames[1, 3:] = torch.log_softmax(torch.randn(3, VOCAB), dim=-1)  # padding: must not count
    outputs = [[4, 5, 6], [6, 4, 4]]
    together = joint_scores(FramesModel(frames), [6, 3], outputs)
    alone = joint_scores(FramesModel(frames[1:, :3]), [3], outputs[1:])
    for both, one in zip(together, alone, strict=True):
        assert torch.allclose(both[1], one[0], atol=1e-5)
    model = FramesModel(frames.numpy())
    joint = JointDecoder(model, 0.3)
    memory = joint.encode(frames.numpy(), np.array([6, 3]))
    state, tokens = joint.init_state(memory), np.full((2,), BOS_ID)
    torch_joint = JointDecoder(FramesModel(frames), 0.3)
    torch_memory = torch_joint.encode(frames, torch.tensor([6, 3]))
    torch_state = torch_joint.init_state(torch_memory)
    for step in range(4):
        scores, state = joint.step(tokens, state, memory)
        expected, torch_state = torch_joint.step(torch.from_numpy(tokens), torch_state, torch_memory)
        np.testing.assert_allclose(scores, expected.numpy(), rtol=1e-4, atol=1e-5)
        tokens = np.array([outputs[0][min(step, 2)], outputs[1][min(step, 2)]])


def test_greedy_ctc_merges_repeats_and_drops_blanks() -> None:
    frames = torch.full((2, 7, VOCAB), -20.0)
    for row, path in enumerate([[0, 4, 4, 0, 4, 5, 5], [6, 0, 0, 6, 6, 0, 0]]):
        frames[row, torch.arange(7), torch.tensor(path)] = -0.01
    frames[1, 5:] = torch.randn(2, VOCAB)  # padding of a 5-frame row
    found = best_paths(FramesModel(frames), frames, torch.tensor([7, 5]))
    assert [tokens for tokens, _ in found] == [[4, 4, 5, EOS_ID], [6, 6, EOS_ID]]
    assert math.fsum(found[0][1]) == pytest.approx(-0.07, abs=1e-4)  # the log-probabilities add up to the path's
    hypotheses = decode(FramesModel(frames), frames, torch.tensor([7, 5]), DecodingOptions("ctc"))
    assert hypotheses[1][0].tokens == [6, 6, EOS_ID] and hypotheses[1][0].log_prob == pytest.approx(-0.05, abs=1e-4)


def test_joint_beam_search_follows_the_frames_where_the_decoder_has_no_opinion() -> None:
    frames = torch.full((1, 6, VOCAB), -20.0)
    frames[0, torch.arange(6), torch.tensor([0, 5, 0, 5, 6, 0])] = -0.01
    model = FramesModel(frames)
    found = decode(model, frames, torch.tensor([6]), DecodingOptions("beam", beam_size=3))
    assert found[0][0].tokens == [5, 5, 6, EOS_ID]  # the decoder's uniform scores alone would choose anything
    greedy = decode(model, frames, torch.tensor([6]), DecodingOptions(ctc_weight=0.9))
    assert greedy[0][0].tokens == [5, 5, 6, EOS_ID]
    sampling = DecodingOptions("sample", num_samples=4, seed=1, max_length=5)  # draws from the decoder alone
    alone = FramesModel(frames)
    alone.ctc_weight = 0.0
    assert [h.tokens for h in decode(model, frames, torch.tensor([6]), sampling)[0]] == \
        [h.tokens for h in decode(alone, frames, torch.tensor([6]), sampling)[0]]


def test_ctc_options_are_checked_in_one_line() -> None:
    with pytest.raises(ConfigError, match="ctc_weight applies only to strategies greedy and beam, not 'sample'"):
        DecodingOptions("sample", ctc_weight=0.3)
    with pytest.raises(ConfigError, match=r"ctc_weight must be in \[0, 1\], not 1.5"):
        DecodingOptions("beam", ctc_weight=1.5)
    with pytest.raises(ConfigError, match="strategy ctc reads the best label of each frame: max_length, min_length"):
        DecodingOptions("ctc", ban_unk=True)
    model = FramesModel(random_frames(1, 3))
    model.ctc_weight = 0.0  # a model without a CTC head
    src, lengths = model.log_probs, torch.tensor([3])
    with pytest.raises(ConfigError, match="strategy ctc needs a model with a CTC head"):
        decode(model, src, lengths, DecodingOptions("ctc"))
    with pytest.raises(ConfigError, match="ctc_weight needs a model with a CTC head"):
        decode(model, src, lengths, DecodingOptions("beam", ctc_weight=0.3))
    assert decode(model, src, lengths, DecodingOptions(max_length=3))[0][0].tokens  # the decoder alone
