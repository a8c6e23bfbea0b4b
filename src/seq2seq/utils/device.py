"""Device and precision: where tensors live (`auto`: CUDA when present) and which autocast dtype runs on it."""

from __future__ import annotations

import contextlib
from typing import Any

import torch


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
