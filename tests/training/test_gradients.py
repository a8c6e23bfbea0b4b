"""Gradients: embedding row gradients equal dense ones and leave the model as it was; clipping scales only gradients
above the norm."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from seq2seq.config import Config, apply_overrides
from seq2seq.data.preparation import prepare_pairs
from seq2seq.models.objectives import sequence_losses
from seq2seq.models.seq2seq import Seq2Seq
from seq2seq.training.gradients import EmbeddingRowGradients, clip_gradients
from seq2seq.training.trainer import Trainer
from tests.conftest import toy_pairs
from tests.training.test_train import TINY


def test_embedding_row_gradients_equal_dense_gradients_step_after_step() -> None:
    torch.manual_seed(0)
    dense = Seq2Seq(apply_overrides(Config(), TINY).model, 40, 50).eval()  # eval: no dropout, same graph twice
    rows = copy.deepcopy(dense)
    with EmbeddingRowGradients(rows) as row_gradients:
        assert len(row_gradients.weight_ids) == 2  # the encoder's and the decoder's embeddings
        for _ in range(3):  # each step looks up other rows: the last step's rows must be zeroed, no others
            src, tgt = torch.randint(1, 40, (4, 6)), torch.randint(1, 50, (4, 5))
            lengths = torch.tensor([6, 5, 3, 2])
            dense.zero_grad(set_to_none=True)
            dense.project(dense(src, lengths, tgt)).logsumexp(-1).sum().backward()
            row_gradients.zero_grad()
            rows.project(rows(src, lengths, tgt)).logsumexp(-1).sum().backward()
            for (name, expected), got in zip(dense.named_parameters(), rows.parameters(), strict=True):
                assert got.grad is not None and got.grad.layout == torch.strided, name
                torch.testing.assert_close(got.grad, expected.grad, msg=name)


def _embeddings(model: nn.Module) -> list[tuple[bool, int, torch.Tensor | None]]:
    """Each embedding's sparse flag, number of forward hooks and gradient."""
    return [(m.sparse, len(m._forward_hooks), m.weight.grad) for m in model.modules() if isinstance(m, nn.Embedding)]


def test_training_gives_the_model_its_embeddings_back_as_they_were(tmp_path: Path) -> None:
    config = apply_overrides(Config(), [*TINY, "train.max_steps=3", "train.eval_every=0"])
    prepared = prepare_pairs(config, toy_pairs("copy", 40, seed=1), [])
    model = Seq2Seq(config.model, len(prepared.metadata.vocabs[0]), len(prepared.metadata.vocabs[1]))
    before = _embeddings(model)
    assert len(before) == 2 and not any(sparse or hooks for sparse, hooks, _ in before)
    trainer = Trainer(model, sequence_losses(config.train), config, prepared.examples, [], tmp_path,
                      prepared.metadata.to_dict())
    assert trainer.fit().step == 3
    assert _embeddings(model) == before


@pytest.mark.parametrize(("max_norm", "expected_norm"), [(1.0, 1.0), (10.0, 5.0)])
def test_clip_gradients_scales_only_above_the_norm(max_norm: float, expected_norm: float) -> None:
    parameters = [torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)]
    parameters[0].grad, parameters[1].grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])  # total norm 5
    clip_gradients(parameters, max_norm)
    norm = torch.cat([p.grad for p in parameters]).norm()  # type: ignore[misc]
    assert float(norm) == pytest.approx(expected_norm)
    assert float(parameters[1].grad[0] / parameters[0].grad[0]) == pytest.approx(4 / 3)  # direction kept
