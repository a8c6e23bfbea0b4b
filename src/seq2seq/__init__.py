"""seq2seq: recurrent sequence models for translation, G2P, summarization, chat, text generation, classification
and speech recognition.

The names below load on first use, so that importing one part (a data reader, the ONNX runtime) does not import
the models, the trainer and torch with it. Module paths of the flat 0.1 layout still import, with a warning.
"""

from __future__ import annotations

from typing import Any

from seq2seq.utils import moved
from seq2seq.utils.lazy import homes, lazy_getattr

moved.install()

_NAMES = {**homes("seq2seq.api", ["Translator", "load", "load_generator", "train"]),
          **homes("seq2seq.tasks.lm", ["TextGenerator", "train_language_model"])}
_lazy = lazy_getattr(__name__, _NAMES)

__all__ = ["TextGenerator", "Translator", "load", "load_generator", "train", "train_language_model"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    from seq2seq.utils.collector import paused_gc

    with paused_gc():  # these imports pull in torch
        return _lazy(name)
