"""The settings of a language model that adapts as it reads (`evaluate --dynamic`, `generate --adapt`); no torch,
so the command line can make its flags from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seq2seq.errors import ConfigError

RULES = ("rms", "sgd")


def _knob(default: Any, help: str) -> Any:
    """An Adaptation field; its help is that of the command-line flag made from it."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Adaptation:
    """One update per `segment` tokens: a step of size `lr` on the segment's mean cross-entropy, then a pull of
    `decay` of the way back toward the trained weights.

    Rule "rms" divides each gradient by the root of its running mean square over the segments read so far (as
    RMSprop does); "sgd" takes the plain gradient step.
    """

    lr: float = _knob(5e-4, "step size of each update")
    decay: float = _knob(1e-3, "fraction of the way back to the trained weights after each update")
    segment: int = _knob(20, "tokens scored between two updates")
    rule: str = "rms"

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ConfigError(f"unknown adaptation rule {self.rule!r} (choose {' or '.join(RULES)})")
        if self.lr <= 0 or not 0 <= self.decay < 1 or self.segment < 1:
            raise ConfigError("adaptation: lr must be above 0, decay in [0, 1) and segment at least 1 "
                              f"(given lr={self.lr}, decay={self.decay}, segment={self.segment})")
