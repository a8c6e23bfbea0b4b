"""A tiny model really learns to copy and to reverse short sequences, with every architecture and cell."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import toy_pairs

from seq2seq import api, metrics
from seq2seq.config import Config, apply_overrides

SETTINGS = {
    "context": ["model.hidden_size=128", "train.epochs=12"],
    "repeat": ["model.hidden_size=128", "train.epochs=14"],
    "attention": ["model.hidden_size=64", "train.epochs=6"],
}


def toy_config(arch: str, rnn: str) -> Config:
    config = Config()
    return apply_overrides(config, [
        f"model.arch={arch}", f"model.rnn={rnn}", "model.embedding_size=32", "model.dropout=0.0",
        "data.src.kind=word", "data.tgt.kind=word", "data.src.split_punctuation=false",
        "data.tgt.split_punctuation=false", "data.batch_size=32", "train.precision=fp32", "train.lr=0.003",
        "train.threads=1", *SETTINGS[arch]])


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
@pytest.mark.parametrize("arch", ["context", "repeat", "attention"])
@pytest.mark.parametrize("task", ["copy", "reverse"])
def test_learns_toy_task(task: str, arch: str, rnn: str, tmp_path: Path) -> None:
    train, held_out = toy_pairs(task, 3000, seed=1), toy_pairs(task, 200, seed=2)
    translator = api.train(toy_config(arch, rnn), train, held_out[:100], tmp_path)
    outputs = translator.translate([p.src for p in held_out[100:]])
    accuracy = metrics.exact_match(outputs, [[p.tgt] for p in held_out[100:]])
    assert accuracy >= 95.0, f"{task} {arch} {rnn}: exact match {accuracy:.1f}%"
