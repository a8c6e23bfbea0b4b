"""Trainer details: the linear schedule decays the learning rate to zero over the step budget; accumulation; token
batches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seq2seq import api
from seq2seq.config import Config, apply_overrides, validate
from seq2seq.errors import CheckpointError, ConfigError
from seq2seq.models.objectives import sequence_losses
from seq2seq.models.seq2seq import Seq2Seq
from seq2seq.training.checkpoint import load_checkpoint
from seq2seq.training.trainer import Trainer
from tests.conftest import toy_pairs

TINY = ["model.hidden_size=16", "model.embedding_size=8", "data.src.kind=word", "data.tgt.kind=word",
        "data.src.split_punctuation=false", "data.tgt.split_punctuation=false", "train.precision=fp32",
        "train.threads=1", "data.batch_size=8", "train.epochs=0"]


def test_linear_schedule_reaches_zero_at_the_step_budget(tmp_path: Path) -> None:
    config = apply_overrides(Config(), [*TINY, "train.max_steps=100", "train.lr_schedule=linear",
                                        "train.eval_every=50"])
    api.train(config, toy_pairs("copy", 200, seed=1), toy_pairs("copy", 20, seed=2), tmp_path)
    rates = [json.loads(line)["lr"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["event"] == "eval"]
    assert rates[0] == pytest.approx(1e-3 * (1 - 49 / 100))
    assert rates[-1] == pytest.approx(1e-3 * (1 - 99 / 100))


def test_linear_schedule_needs_a_budget() -> None:
    config = apply_overrides(Config(), ["train.lr_schedule=linear"])
    with pytest.raises(ConfigError, match="needs a budget"):
        validate(config)


def test_plateau_decay_after_each_run_of_patience_plus_one_stalled_evaluations(tmp_path: Path) -> None:
    config = apply_overrides(Config(), [*TINY, "train.metric=loss", "train.lr_patience=1", "train.lr_decay=0.5"])
    trainer = Trainer(Seq2Seq(config.model, 10, 10), sequence_losses(config.train), config, [], [],
                      tmp_path, {})
    rates = []
    for dev_loss in (3.0, 2.0, 2.5, 2.4, 2.1, 2.2, 1.0, 1.5):
        trainer._track_best(dev_loss)
        rates.append(trainer.optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4, 2.5e-4])


def test_restoring_an_optimizer_state_that_does_not_fit_is_a_checkpoint_error(tmp_path: Path) -> None:
    config = apply_overrides(Config(), TINY)
    trainer = Trainer(Seq2Seq(config.model, 10, 10), sequence_losses(config.train), config, [], [],
                      tmp_path, {"config": config.to_dict()})
    trainer.save_last()
    tensors, metadata = load_checkpoint(tmp_path / "last.safetensors")
    metadata["training"]["optimizer"]["param_groups"][0]["params"].pop()
    with pytest.raises(CheckpointError, match=r"last\.safetensors: the optimizer state does not fit the model"):
        trainer.restore(tensors, metadata)


def trained_weights(out: Path, overrides: list[str]) -> dict[str, torch.Tensor]:
    """The model weights after training a tiny copy model (no dropout) with the overrides."""
    config = apply_overrides(Config(), [*TINY, "model.dropout=0", "train.max_steps=6", *overrides])
    api.train(config, toy_pairs("copy", 96, seed=1), [], out)
    return {k: v for k, v in load_checkpoint(out / "last.safetensors")[0].items() if k.startswith("model.")}


def test_accumulating_two_batches_equals_one_batch_twice_as_large(tmp_path: Path) -> None:
    """train.accumulate=2 of batch B takes the same steps as batch 2B: the same examples, the same mean loss."""
    large = trained_weights(tmp_path / "large", ["data.batch_size=16"])
    accumulated = trained_weights(tmp_path / "accumulated", ["data.batch_size=8", "train.accumulate=2"])
    for name, weight in large.items():
        torch.testing.assert_close(accumulated[name], weight, rtol=0, atol=1e-5, msg=name)
    single = trained_weights(tmp_path / "single", ["data.batch_size=8"])
    assert any(not torch.allclose(single[name], weight, atol=1e-4) for name, weight in large.items())


def test_token_batches_train_and_log_their_tokens(tmp_path: Path) -> None:
    config = apply_overrides(Config(), [*TINY, "train.max_steps=3", "data.batch_tokens=40"])
    api.train(config, toy_pairs("copy", 96, seed=1), [], tmp_path)
    first = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] == 1 and first["tokens"] <= 40
