"""Device and precision: where tensors live (`auto`: CUDA when present) and which autocast dtype runs on it."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch

NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of CPUs that compute in bf16 natively


def resolve_device(name: str) -> torch.device:
    """`auto` means CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The mixed-precision dtype to use, or None for plain fp32."""
    if precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None


def precision_reason(precision: str, device: torch.device, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The precision `autocast_dtype` picks and why, for the log: "bf16: the CPU has native bf16 (amx_bf16)",
    "fp32: no native bf16 on this CPU", "fp16: train.precision=fp16", ..."""
    name = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[autocast_dtype(precision, device)]
    if precision != "auto":
        return f"{name}: train.precision={precision}"
    if device.type == "cuda":
        return f"{name}: the GPU {'computes' if name == 'bf16' else 'does not compute'} in bf16"
    if name == "fp32":
        return "fp32: no native bf16 on this CPU (bf16 would be emulated)"
    flags = [flag for flag in NATIVE_BF16_FLAGS if flag in cpu_flags(cpuinfo)]
    return f"bf16: the CPU has native bf16 ({', '.join(flags) if flags else 'oneDNN says so'})"


def cpu_flags(cpuinfo: Path) -> set[str]:
    """The CPU's feature flags as Linux lists them (none where the file is missing)."""
    try:
        lines = cpuinfo.read_text(encoding="utf-8").splitlines()
    except OSError:
        return set()
    return next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())


def mixed_precision(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """An autocast context for the precision setting, or a no-op for fp32."""
    dtype = autocast_dtype(precision, device)
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def rnn_autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """The context for a multi-step RNN call (nn.LSTM / nn.GRU): on a CPU without native bf16, outside autocast,
    where oneDNN's bf16 RNN fails (in inference, and whenever it is given a state); elsewhere nothing changes."""
    if (device.type == "cpu" and torch.is_autocast_enabled("cpu")
            and not torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        return torch.autocast("cpu", enabled=False)
    return contextlib.nullcontext()
