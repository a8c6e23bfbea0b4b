"""Training throughput: the target tokens per second of each logging interval, and whether a run's rate held."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

INTERVAL = "interval_tokens_per_second"  # the metrics.jsonl field of an interval's rate


class IntervalRate:
    """Target tokens per second of the steps since the last `take`: the time between steps (evaluation, checkpoints,
    logging) aside, so that the rate is that of training alone."""

    def __init__(self) -> None:
        self.tokens, self.seconds = 0, 0.0

    def add(self, tokens: int, seconds: float) -> None:
        """Count one step: its target tokens and the seconds it took."""
        self.tokens += tokens
        self.seconds += seconds

    def take(self) -> float:
        """The rate since the last take (or since made), and start anew."""
        rate = self.tokens / max(self.seconds, 1e-9)
        self.tokens, self.seconds = 0, 0.0
        return rate


def steady_rates(rows: Iterable[dict[str, Any]]) -> list[float]:
    """The interval rates of a run's metrics.jsonl rows, in order, the first step's (its warm-up) aside when there are
    others."""
    rates = [row[INTERVAL] for row in rows if row.get("event") == "train" and INTERVAL in row]
    return rates[1:] or rates


@dataclass(frozen=True)
class Decay:
    """How a run's rate moved: the median interval rate of its first third and of its last third."""

    first: float
    last: float

    @property
    def ratio(self) -> float:
        """Last over first: 1 when the rate held, 0.8 when the last third is 20% slower."""
        return self.last / self.first if self.first else float("nan")

    def holds(self, tolerance: float = 0.1) -> bool:
        """Whether the last third is at most `tolerance` (a fraction) slower than the first."""
        return self.ratio >= 1 - tolerance

    def line(self, tolerance: float = 0.1) -> str:
        """One line to print: OK or FAIL, the two rates and their ratio."""
        verdict = "OK" if self.holds(tolerance) else "FAIL"
        return (f"{verdict}: target tokens/s, first third {self.first:,.0f}, last third {self.last:,.0f} "
                f"(ratio {self.ratio:.3f}; FAIL below {1 - tolerance:.2f})")


def decay(rates: Sequence[float]) -> Decay:
    """The first third against the last third of a run's interval rates (medians, so that one interval slowed by
    another process on the machine does not decide it). Needs at least three rates."""
    if len(rates) < 3:
        raise ValueError(f"a decay needs at least 3 interval rates, got {len(rates)}")
    third = len(rates) // 3
    return Decay(statistics.median(rates[:third]), statistics.median(rates[-third:]))
