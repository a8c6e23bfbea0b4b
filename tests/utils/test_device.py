"""train.precision=auto says in the log which precision it picked and why."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from seq2seq import api
from seq2seq.config import Config, apply_overrides
from seq2seq.utils.device import precision_reason
from tests.conftest import toy_pairs
from tests.training.test_train import TINY

CPU = torch.device("cpu")


def cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx2 {flags}\n\nprocessor\t: 1\n")
    return path


def native_bf16(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)


def test_auto_on_a_cpu_with_native_bf16_names_its_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    native_bf16(monkeypatch, True)
    path = cpuinfo(tmp_path, "avx512f avx512_bf16 amx_tile amx_bf16")
    assert precision_reason("auto", CPU, path) == "bf16: the CPU has native bf16 (amx_bf16, avx512_bf16)"
    assert precision_reason("auto", CPU, tmp_path / "missing") == "bf16: the CPU has native bf16 (oneDNN says so)"


def test_auto_on_a_cpu_without_native_bf16_is_fp32(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    native_bf16(monkeypatch, False)
    assert precision_reason("auto", CPU, cpuinfo(tmp_path, "")) == \
        "fp32: no native bf16 on this CPU (bf16 would be emulated)"


def test_a_chosen_precision_is_the_config_s() -> None:
    assert precision_reason("fp32", CPU) == "fp32: train.precision=fp32"
    assert precision_reason("bf16", CPU) == "bf16: train.precision=bf16"


def test_training_logs_the_precision_and_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = apply_overrides(Config(), [*TINY, "train.max_steps=1", "train.precision=auto"])
    with caplog.at_level(logging.INFO, logger="seq2seq.training.trainer"):
        api.train(config, toy_pairs("copy", 16, seed=1), [], tmp_path)
    assert f"precision {precision_reason('auto', CPU)}" in caplog.text
