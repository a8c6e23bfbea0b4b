"""TensorBoard and evaluation samples: event files hold the metrics.jsonl numbers, dev samples as text and attention
as images; a language model logs a sample per temperature at each evaluation without changing its training."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seq2seq import api
from seq2seq.config import Config, apply_overrides
from seq2seq.errors import ConfigError
from seq2seq.tasks.lm import train_language_model
from seq2seq.training.board import Sample, check_available
from tests.cli.test_cli import model_tensors
from tests.conftest import toy_pairs

TINY = ["model.hidden_size=16", "model.embedding_size=8", "data.src.kind=word", "data.tgt.kind=word",
        "data.src.split_punctuation=false", "data.tgt.split_punctuation=false", "train.precision=fp32",
        "train.threads=1", "data.batch_size=16", "train.epochs=0"]
LM = ["data.entries=line", "model.hidden_size=16", "model.embedding_size=8", "model.dropout=0.3", "data.window=12",
      "data.batch_size=8", "train.precision=fp32", "train.epochs=2"]
PHRASES = ["the cat sat on the mat", "a dog ran in the fog"] * 10


def events(run: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def test_event_files_hold_the_scalars_dev_samples_and_attention_images(tmp_path: Path) -> None:
    config = apply_overrides(Config(), [*TINY, "train.max_steps=20", "train.eval_every=10",
                                        "train.metric=exact_match", "train.tensorboard=true"])
    dev = toy_pairs("copy", 12, seed=2)
    api.train(config, toy_pairs("copy", 100, seed=1), dev, tmp_path)
    board = events(tmp_path)
    tags = board.Tags()
    assert {"train/loss", "train/perplexity", "train/interval_tokens_per_second", "train/mean_tokens_per_second",
            "train/lr", "dev/loss", "dev/perplexity", "dev/exact_match", "dev/lr"} <= set(tags["scalars"])
    evals = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evals = [record for record in evals if record["event"] == "eval"]
    assert [(e.step, pytest.approx(e.value)) for e in board.Scalars("dev/loss")] == [(r["step"], r["loss"])
                                                                                    for r in evals]
    assert set(tags["tensors"]) == {f"samples/dev_{n}/text_summary" for n in (1, 2, 3)}
    text = board.Tensors("samples/dev_1/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert f"source: {dev[0].src}" in text and f"reference: {dev[0].tgt}" in text and "output: " in text
    assert set(tags["images"]) == {f"attention/dev_{n}" for n in (1, 2, 3)}
    images = board.Images("attention/dev_1")
    assert [image.step for image in images] == [10, 20]
    assert images[0].encoded_image_string.startswith(b"\x89PNG") and images[0].width > 50


def test_a_resumed_run_replaces_the_events_written_after_its_checkpoint(tmp_path: Path) -> None:
    """Resumed from the checkpoint of step 10 after a run that went on to 20: one dev/loss per step, the new ones."""
    pairs, dev = toy_pairs("copy", 100, seed=1), toy_pairs("copy", 12, seed=2)
    overrides = [*TINY, "train.eval_every=10", "train.tensorboard=true", "train.sample_temperatures=[]"]
    api.train(apply_overrides(Config(), [*overrides, "train.max_steps=10"]), pairs, dev, tmp_path)
    at_ten = (tmp_path / "last.safetensors").read_bytes()
    other_updates = apply_overrides(Config(), [*overrides, "train.max_steps=20", "train.clip_norm=0.001"])
    api.train(other_updates, pairs, dev, tmp_path, resume=True)
    (tmp_path / "last.safetensors").write_bytes(at_ten)  # as if killed before the checkpoint of step 20
    api.train(apply_overrides(Config(), [*overrides, "train.max_steps=30"]), pairs, dev, tmp_path, resume=True)
    evals = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    last_run = {record["step"]: record["loss"] for record in evals if record["event"] == "eval"}  # later rows win
    scalars = [(e.step, e.value) for e in events(tmp_path).Scalars("dev/loss")]
    assert [step for step, _ in scalars] == [10, 20, 30]
    assert all(value == pytest.approx(last_run[step]) for step, value in scalars)
    assert next(r["loss"] for r in evals if r["event"] == "eval" and r["step"] == 20) != last_run[20]


def test_language_model_logs_a_sample_per_temperature_without_changing_training(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    quiet = apply_overrides(Config(), [*LM, "train.sample_temperatures=[]"])
    train_language_model(quiet, PHRASES, PHRASES[:4], out_dir=tmp_path / "quiet")
    caplog.set_level(logging.INFO, logger="seq2seq.training.trainer")
    config = apply_overrides(Config(), [*LM, "train.tensorboard=true"])
    train_language_model(config, PHRASES, PHRASES[:4], out_dir=tmp_path / "samples")
    logged = [record.getMessage() for record in caplog.records if ", temperature " in record.getMessage()]
    assert [line.split(":")[0] for line in logged] == [f"step {step}, temperature {temperature}"
                                                       for step in (5, 10) for temperature in ("0.5", "1", "1.2")]
    assert all(': output "' in line for line in logged)
    quiet_weights, weights = (model_tensors(tmp_path / run / "last.safetensors") for run in ("quiet", "samples"))
    assert all(torch.equal(quiet_weights[name], weights[name]) for name in weights)  # dropout drew the same masks
    tags = events(tmp_path / "samples").Tags()
    assert {f"samples/temperature_{t}/text_summary" for t in ("0.5", "1", "1.2")} == set(tags["tensors"])
    assert not tags["images"]


def test_samples_are_the_same_for_the_same_seed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="seq2seq.training.trainer")
    config = apply_overrides(Config(), [*LM, "train.epochs=1", "train.sample_temperatures=[1.2]"])
    for run in ("first", "second"):
        train_language_model(config, PHRASES, PHRASES[:4], out_dir=tmp_path / run)
    logged = [record.getMessage() for record in caplog.records if ", temperature " in record.getMessage()]
    assert len(logged) == 2 and logged[0] == logged[1]


def test_a_sample_is_one_log_line_and_a_verbatim_block() -> None:
    sample = Sample("dev 1", "x *y*\nz", source="a_b", reference="c")
    assert sample.line() == 'dev 1: source "a_b"  reference "c"  output "x *y*\\nz"'
    assert sample.markdown() == "    source: a_b\n    reference: c\n    output: x *y*\n    z"


def test_tensorboard_without_the_package_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed: importing it raises ImportError
    config = apply_overrides(Config(), ["train.tensorboard=true"])
    with pytest.raises(ConfigError, match=r"^train.tensorboard needs the tensorboard package: pip install "
                                          r"'seq2seq\[tensorboard\]'$"):
        check_available(config)
    check_available(Config())  # off: nothing is needed
