"""The CUDA path (marked gpu, skipped without a GPU; CI has none): bf16 training on the GPU learns, and the checkpoint
decodes on the GPU as on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seq2seq import api
from seq2seq.config import Config, apply_overrides
from tests.conftest import toy_pairs
from tests.onnx.test_onnx import TINY

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


def test_bf16_training_on_cuda_learns_and_decodes_as_on_cpu(tmp_path: Path) -> None:
    overrides = [*TINY, "train.epochs=6", "train.device=cuda", "train.precision=bf16"]
    api.train(apply_overrides(Config(), overrides), toy_pairs("reverse", 600, seed=1), out_dir=tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [record["loss"] for record in records if record["event"] == "train"]
    assert losses[-1] < 0.8 * losses[0]
    texts = [pair.src for pair in toy_pairs("reverse", 50, seed=2)]
    on_gpu = api.load(tmp_path, device="cuda", precision="fp32").translate(texts)
    on_cpu = api.load(tmp_path, device="cpu", precision="fp32").translate(texts)
    assert sum(a == b for a, b in zip(on_gpu, on_cpu, strict=True)) >= 0.9 * len(texts)
