"""Model properties: teacher-forced forward equals step-by-step decoding; batched equals one-by-one."""

from __future__ import annotations

import pytest
import torch

from seq2seq.config import ModelConfig
from seq2seq.decoding.search import greedy
from seq2seq.models.seq2seq import Seq2Seq

ARCHITECTURES = [("context", "general"), ("repeat", "general"), ("attention", "bahdanau"),
                 ("attention", "dot"), ("attention", "general"), ("transformer", "general")]


def small_config(arch: str, rnn: str, attention: str = "general", layers: int = 2, coverage: bool = False
                 ) -> ModelConfig:
    """A small model's config (a transformer's: 4 heads of 4, the RNN settings unused)."""
    return ModelConfig(arch=arch, rnn=rnn, attention=attention, num_layers=layers, hidden_size=16, embedding_size=8,
                       dropout=0.0, coverage=coverage, heads=4, feedforward_size=32)


def small_model(arch: str, rnn: str, attention: str = "general", layers: int = 2) -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq(small_config(arch, rnn, attention, layers), 12, 14).eval()


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    src = torch.randint(4, 12, (4, 6), generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([6, 3, 5, 1])
    for row, length in enumerate(lengths):
        src[row, length:] = 0
    return src, lengths


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
@pytest.mark.parametrize(("arch", "attention"), ARCHITECTURES)
def test_forward_equals_stepwise(arch: str, attention: str, rnn: str) -> None:
    model = small_model(arch, rnn, attention)
    src, lengths = padded_batch()
    tgt_in = torch.randint(4, 14, (4, 7))
    with torch.no_grad():
        forward_logits = model.project(model(src, lengths, tgt_in))
        memory = model.encode(src, lengths)
        state = model.init_state(memory)
        stepped = []
        for t in range(tgt_in.size(1)):
            logits, state = model.step(tgt_in[:, t], state, memory)
            stepped.append(logits)
    torch.testing.assert_close(torch.stack(stepped, dim=1), forward_logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
@pytest.mark.parametrize(("arch", "attention"), ARCHITECTURES)
def test_batched_greedy_equals_one_by_one(arch: str, attention: str, rnn: str) -> None:
    model = small_model(arch, rnn, attention)
    src, lengths = padded_batch()
    batched = greedy(model, src, lengths, max_length=9)
    for row in range(src.size(0)):
        single = greedy(model, src[row:row + 1, :lengths[row]], lengths[row:row + 1], max_length=9)
        width = single.tokens.size(1)
        assert torch.equal(batched.tokens[row, :width], single.tokens[0])
        assert (batched.tokens[row, width:] == 0).all()
        torch.testing.assert_close(batched.scores[row], single.scores[0], rtol=1e-5, atol=1e-5)


def test_padding_does_not_change_the_encoding() -> None:
    model = small_model("attention", "lstm")
    src, lengths = padded_batch()
    memory = model.encode(src, lengths)
    alone = model.encode(src[1:2, :3], lengths[1:2])
    torch.testing.assert_close(memory.outputs[1, :3], alone.outputs[0])
    assert (memory.outputs[1, 3:] == 0).all()
    assert torch.equal(memory.mask[1], torch.tensor([True] * 3 + [False] * 3))


def test_index_select_reorders_state_and_memory() -> None:
    model = small_model("attention", "lstm")
    src, lengths = padded_batch()
    memory = model.encode(src, lengths)
    state = model.init_state(memory)
    index = torch.tensor([2, 2, 0])
    picked_memory, picked_state = memory.index_select(index), state.index_select(index)
    assert torch.equal(picked_memory.outputs[0], memory.outputs[2])
    assert torch.equal(picked_state["hidden1"][:, 2], state["hidden1"][:, 0])  # (L, B, H): rows on axis 1
    assert torch.equal(picked_state["attention"][2], state["attention"][0])
    logits, _ = model.step(torch.tensor([5, 5, 5]), picked_state, picked_memory)
    assert torch.equal(logits[0], logits[1])


def test_scheduled_sampling_changes_inputs_only_below_one() -> None:
    model = small_model("attention", "gru", layers=1)
    src, lengths = padded_batch()
    tgt_in = torch.randint(4, 14, (4, 5))
    with torch.no_grad():
        full = model(src, lengths, tgt_in, teacher_forcing=1.0)
        never = model(src, lengths, tgt_in, teacher_forcing=0.0)
        torch.testing.assert_close(model(src, lengths, tgt_in, teacher_forcing=1.0), full)
    torch.testing.assert_close(never[:, 0], full[:, 0])  # the first input is always <s>
    assert not torch.allclose(never, full)



@pytest.mark.parametrize(("arch", "rnn", "coverage"), [("context", "lstm", False), ("repeat", "gru", False),
                                                       ("attention", "gru", True), ("attention", "lstm", False),
                                                       ("transformer", "lstm", False)])
def test_the_state_is_what_the_decoder_declares(arch: str, rnn: str, coverage: bool) -> None:
    """Every state a step returns holds the tensors `state_axes` names, each lying as declared: a repeat decoder
    keeps its repeated vector as `context`, only the attention decoder keeps weights to show."""
    model = Seq2Seq(small_config(arch, rnn, coverage=coverage), 12, 14).eval()
    memory = model.encode(*padded_batch())
    state = model.init_state(memory)
    _, stepped = model.step(torch.tensor([5, 6, 7, 8]), state, memory)
    assert dict(state.axes) == dict(stepped.axes) == model.state_axes()
    assert ("context" in state) == (arch == "repeat")
    assert ("attention" in state) == (arch in ("attention", "transformer"))
    for name, axes in state.axes.items():
        assert state[name].size(axes.batch) == 4
