"""Training curves: a run directory's metrics.jsonl read into series (training and dev metrics against steps or wall
time) and drawn, several runs in one figure (needs matplotlib)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seq2seq.data.pairs import json_record, read_lines
from seq2seq.errors import DataError
from seq2seq.utils import plot
from seq2seq.utils.files import atomic_path

METRICS_FILE = "metrics.jsonl"
X_KEYS = {"steps": "step", "time": "elapsed"}
X_LABELS = {"steps": "updates", "time": "training time (s)"}
NOT_METRICS = {"event", "step", "epoch", "elapsed", "time", "tokens"}
SPLITS = {"train": "train", "eval": "dev"}
SCHEDULES = {"lr"}  # one curve per run whichever rows hold them, not one per split


@dataclass
class Series:
    """One curve: a metric of one run (its training or dev rows) against steps or training time."""

    run: str
    split: str  # train, dev, or "" for a schedule (the learning rate)
    metric: str
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.run} ({self.split})" if self.split else self.run


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a run directory's metrics.jsonl; a missing file or a bad line raises DataError naming it."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise DataError(f"{run_dir}: no {METRICS_FILE} (not a training run directory, or no step logged yet)")
    rows = []
    for number, line in read_lines(path):
        if not line.strip():
            continue
        row = json_record(line, f"{path}:{number}")
        if not (isinstance(row, dict) and row.get("event") in SPLITS and {"step", "elapsed"} <= row.keys()):
            raise DataError(f"{path}:{number}: expected an object with an event (train or eval), step and elapsed")
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no rows yet")
    return rows


def run_series(run_dir: str | Path, x: str = "steps") -> list[Series]:
    """Every numeric metric of a run against x (steps or time), labelled by the run directory's name."""
    run = Path(run_dir).resolve().name
    found: dict[tuple[str, str], Series] = {}
    for row in read_metrics(run_dir):
        for metric, value in row.items():
            if metric in NOT_METRICS or not isinstance(value, int | float) or isinstance(value, bool):
                continue
            split = "" if metric in SCHEDULES else SPLITS[row["event"]]
            series = found.setdefault((split, metric), Series(run, split, metric))
            series.x.append(float(row[X_KEYS[x]]))
            series.y.append(float(value))
    return list(found.values())


def select(series: Iterable[Series], metric: str | None) -> list[Series]:
    """The series of one metric (all of them for None); an unknown metric raises DataError listing the known."""
    series = list(series)
    known = sorted({s.metric for s in series})
    if metric is not None and metric not in known:
        raise DataError(f"unknown metric {metric!r}; the runs have: {', '.join(known) or 'none'}")
    return [s for s in series if metric in (None, s.metric)]


def draw(series: Sequence[Series], x: str = "steps") -> Any:
    """A matplotlib Figure with one panel per metric, one curve per series in it."""
    metrics = list(dict.fromkeys(s.metric for s in series))
    figure = plot.figure_class()(figsize=(7, 2.6 * max(1, len(metrics))))
    panels = figure.subplots(max(1, len(metrics)), 1, sharex=True, squeeze=False)[:, 0]
    for axes, metric in zip(panels, metrics, strict=False):
        for curve in (s for s in series if s.metric == metric):
            axes.plot(curve.x, curve.y, marker="." if len(curve.x) < 30 else None, label=curve.label)
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    panels[-1].set_xlabel(X_LABELS[x])
    figure.tight_layout()
    return figure


def save_curves(series: Sequence[Series], path: str | Path, x: str = "steps") -> Any:
    """Draw the series (`draw`) into a PNG file; returns the Figure."""
    figure = draw(series, x)
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, format="png")
    except OSError as error:
        raise DataError(f"{path}: cannot write: {error.strerror}") from error
    return figure
