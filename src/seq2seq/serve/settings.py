"""How a server batches, and what one request may ask for: the one home of these defaults (`seq2seq serve`'s flags
are made from the fields)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def knob(default: Any, help: str) -> Any:
    """A field with its default and the help of its command-line flag."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; beyond it, a 4xx naming the field (or 429 when too many are in flight)."""

    max_body_bytes: int = knob(1 << 20, "request body size in bytes")
    max_audio_bytes: int = knob(4 << 20, "WAV body size in bytes of a transcribe request")
    max_texts: int = knob(64, "texts per translate or classify request")
    max_chars: int = knob(1000, "characters per text, prompt or message")
    max_length: int = knob(512, "ceiling of max_length (output tokens)")
    max_beam_size: int = knob(16, "ceiling of beam_size")
    max_outputs: int = knob(16, "ceiling of n_best, num_samples and generate's num")
    max_history: int = knob(64, "chat turns a client may send back")
    timeout: float = knob(30.0, "seconds per request")
    max_in_flight: int = knob(256, "requests answered at once; beyond, 429")


@dataclass(frozen=True)
class Settings:
    """How the server batches, and its limits."""

    max_batch: int = knob(64, "most sentences per batched decode")
    max_wait_ms: float = knob(5.0, "how long the first input of a batch waits for others to batch with")
    chat_history: int = knob(0, "turns of the conversation given to chat models, as in seq2seq chat --history")
    limits: Limits = field(default_factory=Limits)
