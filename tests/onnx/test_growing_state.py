"""A decoder state that is not RNN-shaped: a step model whose state starts empty and grows one position per step
(as a Transformer's key/value cache) decodes through the search written once, exports, and decodes torch-free to
the same hypotheses as in PyTorch, with nothing in decoding/, export or the runtime written for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

pytest.importorskip("onnxruntime")

from seq2seq.data.vocab import EOS_ID, PAD_ID
from seq2seq.decoding import search
from seq2seq.decoding.options import DecodingOptions, Hypothesis
from seq2seq.models.decoder import Memory
from seq2seq.models.state import BATCH, SOURCE, Axes, DecoderState
from seq2seq.onnx.export import write_graphs
from seq2seq.onnx.model import OnnxModel

VOCAB, SIZE = 15, 8
STEPS = Axes(0, {1: "steps"})  # (B, T, H): one position per step so far
WEIGHTS = Axes(0, {1: SOURCE})  # (B, S)


class GrowingModel(nn.Module):
    """Attends over the source and over every token it has read (its cache (B, T, H), empty before the first step)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.source = nn.Embedding(VOCAB, SIZE, padding_idx=PAD_ID)
        self.target = nn.Embedding(VOCAB, SIZE)
        self.output = nn.Linear(2 * SIZE, VOCAB)
        self.register_buffer("end", nn.functional.one_hot(torch.tensor(EOS_ID), VOCAB).float())  # (V,)

    def encode(self, src: Tensor, src_lengths: Tensor) -> Memory:
        outputs = torch.tanh(self.source(src))  # (B, S, H)
        mask = torch.arange(src.size(1)) < src_lengths[:, None]  # (B, S)
        return Memory(outputs, outputs, mask, ())

    def init_state(self, memory: Memory) -> DecoderState:
        cache = memory.outputs.new_zeros(memory.outputs.size(0), 0, SIZE)  # (B, 0, H)
        weights = memory.mask.new_zeros(memory.mask.shape).float()  # (B, S)
        return DecoderState({"cache": cache, "attention": weights}, {"cache": STEPS, "attention": WEIGHTS})

    def step(self, tokens: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState]:
        cache = torch.cat([state["cache"], self.target(tokens).unsqueeze(1)], dim=1)  # (B, T + 1, H)
        query = cache.mean(dim=1)  # (B, H)
        energies = torch.einsum("bsh,bh->bs", memory.keys, query).masked_fill(~memory.mask, -1e9)
        attention = torch.softmax(energies, dim=-1)  # (B, S)
        context = torch.einsum("bs,bsh->bh", attention, memory.outputs)
        steps = torch.ones_like(cache[:, :, 0]).sum(dim=1)  # (B,) the cache's length, read from the graph's input
        ending = 2 * (steps - memory.mask.sum(dim=1)).float()  # (B,): </s> grows likelier past the source's length
        logits = 3 * self.output(torch.cat([query, context], dim=-1)) + ending[:, None] * self.end  # (B, V)
        return logits, DecoderState({"cache": cache, "attention": attention}, state.axes)


def batch() -> tuple[Tensor, Tensor]:
    lengths = torch.tensor([6, 2, 4, 1, 5])
    src = torch.randint(4, VOCAB, (5, 6), generator=torch.Generator().manual_seed(0))
    return src.masked_fill(torch.arange(6) >= lengths[:, None], PAD_ID), lengths


OPTIONS = {"greedy": DecodingOptions(max_length=9),
           "beam-nbest": DecodingOptions(strategy="beam", beam_size=4, n_best=3, max_length=9)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[GrowingModel, OnnxModel, dict[str, object]]:
    model, folder = GrowingModel().eval(), tmp_path_factory.mktemp("growing")
    entry = write_graphs(model, folder, *batch(), VOCAB)  # type: ignore[arg-type]
    return model, OnnxModel(Path(folder), entry, threads=1), entry


def test_the_state_is_reordered_along_each_tensors_declared_batch_axis() -> None:
    layers = DecoderState({"hidden": torch.arange(6.0).reshape(1, 3, 2), "cache": torch.arange(3.0)[:, None, None]},
                          {"hidden": Axes(batch=1), "cache": STEPS})
    picked = layers.index_select(torch.tensor([2, 0]))
    assert picked["hidden"].tolist() == [[[4.0, 5.0], [0.0, 1.0]]] and picked["cache"].flatten().tolist() == [2, 0]
    numpy = DecoderState({name: value.numpy() for name, value in layers.tensors.items()}, layers.axes)
    assert np.array_equal(numpy.index_select(np.array([2, 0]))["hidden"], picked["hidden"].numpy())


def test_the_manifest_declares_the_state_and_its_axes(exported: tuple[GrowingModel, OnnxModel, dict]) -> None:
    layout = exported[2]["layout"]
    assert layout["state"] == ["cache", "attention"]
    assert layout["state_axes"] == {"cache": {"0": BATCH, "1": "steps"}, "attention": {"0": BATCH, "1": SOURCE}}


@pytest.mark.parametrize("name", list(OPTIONS))
def test_a_growing_state_decodes_alike_in_pytorch_and_onnx_runtime(
        exported: tuple[GrowingModel, OnnxModel, dict], name: str) -> None:
    model, onnx_model, _ = exported
    src, lengths = batch()
    with torch.no_grad():
        mine = search.decode(model, src, lengths, OPTIONS[name])  # type: ignore[arg-type]
    theirs = search.decode(onnx_model, src.numpy(), lengths.numpy(), OPTIONS[name])
    assert [[h.tokens for h in found] for found in theirs] == [[h.tokens for h in found] for found in mine]
    assert len({len(h.tokens) for found in mine for h in found}) > 1  # the cache grew to several lengths
    for found, others in zip(theirs, mine, strict=True):
        for hypothesis, other in zip(found, others, strict=True):
            assert_close(hypothesis, other)


def assert_close(theirs: Hypothesis, mine: Hypothesis) -> None:
    """Log-probabilities and attention weights within float32 rounding."""
    assert abs(theirs.log_prob - mine.log_prob) < 1e-4
    assert theirs.attention is not None and mine.attention is not None
    assert np.abs(theirs.attention - np.asarray(mine.attention)).max() < 1e-5
