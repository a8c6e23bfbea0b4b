"""seq2seq: RNN encoder-decoders for translation, G2P, summarization, chat and text generation.

The names below load on first use, so that importing one part (a data reader, the ONNX runtime) does not import
the models, the trainer and torch with it.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"Translator": "seq2seq.api", "load": "seq2seq.api", "train": "seq2seq.api",
         "TextGenerator": "seq2seq.generation", "load_generator": "seq2seq.generation",
         "train_language_model": "seq2seq.generation"}

__all__ = ["TextGenerator", "Translator", "load", "load_generator", "train", "train_language_model"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'seq2seq' has no attribute {name!r}")
    from seq2seq.collector import paused_gc

    with paused_gc():  # these imports pull in torch
        return getattr(importlib.import_module(_LAZY[name]), name)
