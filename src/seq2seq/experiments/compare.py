"""`seq2seq compare`: variants of one config (key=value overrides) trained one after another under the same time
budget, then one table of their size, training speed, dev loss, scores and decoding speed, and their dev curves."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seq2seq.config import Config, apply_overrides
from seq2seq.errors import ConfigError, RunDirectoryError, Seq2SeqError
from seq2seq.experiments import curves
from seq2seq.tasks import registry
from seq2seq.training import throughput
from seq2seq.utils import plot
from seq2seq.utils.files import write_text_atomically

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class Variant:
    """One design to try: config overrides, and the name of its run directory (made from them)."""

    name: str
    overrides: tuple[str, ...]


@dataclass
class Data:
    """What every variant trains and is scored on: pairs (or texts) read once."""

    train: list[Any]
    dev: list[Any]
    scored: list[Any]  # --test, else --dev, else nothing
    scored_on: str | None  # "test", "dev" or None


@dataclass
class Result:
    """One row of the table."""

    name: str
    overrides: list[str]
    directory: str
    parameters: int
    steps: int
    tokens_per_second: float | None  # target tokens, median of the training log's windows (the first step's aside)
    best_dev_loss: float | None
    scores: dict[str, Any]
    sentences_per_second: float | None  # decoding the scored set
    scored: int  # inputs decoded (distinct sources)


def parse_variant(text: str) -> Variant:
    """`key=value` overrides separated by spaces or commas; named by the keys without their section (`rnn=gru`);
    an empty text is the base config (`base`)."""
    overrides = tuple(item for item in re.split(r"[\s,]+", text.strip()) if item)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"variant {text!r}: {item!r} is not key=value, e.g. model.rnn=gru")
    name = ",".join(_without_section(item) for item in overrides)
    return Variant(re.sub(r"[^\w.,=+-]", "_", name) or "base", overrides)


def _without_section(override: str) -> str:
    """`model.rnn=gru` -> `rnn=gru`."""
    key, _, value = override.partition("=")
    return f"{key.split('.', 1)[-1]}={value}"


def variant_configs(base: Config, variants: Sequence[Variant], max_time: float) -> list[Config]:
    """Each variant's config: base, its overrides, then train.max_time; all checked before anything trains."""
    registry.get(base.task)
    names = [variant.name for variant in variants]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(f"variant {twice[0]} is given twice")
    configs = []
    for variant in variants:
        config = apply_overrides(copy.deepcopy(base), [*variant.overrides, f"train.max_time={max_time}"])
        registry.validate(config)
        if config.task != base.task:
            raise ConfigError(f"variant {variant.name}: task {config.task} differs from the comparison's {base.task}")
        configs.append(config)
    return configs


def read_data(config: Config, train: str, dev: str | None, test: str | None) -> Data:
    """The training, dev and scored data, read once for every variant (pairs, labelled texts or text entries)."""
    task = registry.get(config.task)

    def read(spec: str) -> list[Any]:
        return task.read(config, spec)

    dev_items = read(dev) if dev else []
    return Data(read(train), dev_items, read(test) if test else dev_items, "test" if test else "dev" if dev else None)


def compare(base: Config, variants: Sequence[Variant], data_specs: tuple[str, str | None, str | None], out: Path,
            max_time: float) -> tuple[str, list[Path]]:
    """Train each variant into out/NAME for max_time seconds, one after another; write out/compare.md,
    out/compare.json and out/curves.png; return the Markdown table and the files written."""
    configs = variant_configs(base, variants, max_time)
    directories = [out / variant.name for variant in variants]
    for directory in directories:
        if (directory / curves.METRICS_FILE).exists():
            raise RunDirectoryError(f"{directory}: holds an earlier run, whose metrics.jsonl would mix with the new "
                                    "one; choose another --out")
    drawing = _can_draw()
    data = read_data(base, *data_specs)
    results = []
    for number, (variant, config, directory) in enumerate(zip(variants, configs, directories, strict=True), start=1):
        logger.info("compare: variant %d of %d: %s (%s)", number, len(variants), variant.name,
                    " ".join(variant.overrides) or "the base config")
        results.append(run_variant(variant, config, data, directory))
    columns = list(dict.fromkeys(column for config in configs for column in registry.get(config.task).columns(config)))
    table = markdown(results, columns)
    written = _write_reports(results, columns, table, data.scored_on, out, max_time)
    if drawing and _draw_dev_losses(directories, out / "curves.png"):
        written.append(out / "curves.png")
    return table, written


def run_variant(variant: Variant, config: Config, data: Data, directory: Path) -> Result:
    """Train one variant, read its training log, score it on the scored data."""
    task = registry.get(config.task)
    model = task.train(config, data.train, data.dev, directory, False)
    steps, tokens_per_second, best_dev_loss = training_figures(directory)
    scores, speed, count = _score(task, model, data.scored) if data.scored else ({}, None, 0)
    parameters = sum(parameter.numel() for parameter in model.model.parameters())
    return Result(variant.name, list(variant.overrides), str(directory), parameters, steps, tokens_per_second,
                  best_dev_loss, scores, speed, count)


def training_figures(run_dir: Path) -> tuple[int, float | None, float | None]:
    """Updates, target tokens/s (median of the logged windows, the first step's warm-up aside) and the best dev
    loss, from the run's metrics.jsonl."""
    rows = curves.read_metrics(run_dir)
    steady = throughput.steady_rates(rows)
    losses = [row["loss"] for row in rows if row["event"] == "eval" and "loss" in row]
    return max(row["step"] for row in rows), statistics.median(steady) if steady else None, min(losses, default=None)


def _score(task: registry.Task, model: Any, items: Sequence[Any]) -> tuple[dict[str, Any], float | None, int]:
    """The model's `evaluate` scores (plain values), and inputs per second decoding the items' distinct inputs
    (greedy; None for a task without inputs to decode, such as a language model, scored on the text itself)."""
    scores = {key: round(value, 4) if isinstance(value, float) else value
              for key, value in model.evaluate(items).items() if isinstance(value, int | float | str)}
    if task.use is None:
        return scores, None, len(items)
    inputs = list(dict.fromkeys(item.src for item in items))
    started = time.perf_counter()
    task.use(model, inputs)
    return scores, len(inputs) / (time.perf_counter() - started), len(inputs)


def markdown(results: Sequence[Result], columns: Sequence[tuple[str, str]]) -> str:
    """The comparison as a Markdown table, one row per variant."""
    header = ["variant", "parameters", "updates", "target tokens/s", "best dev loss",
              *(label for label, _ in columns), "sentences/s"]
    rows = [[result.name, f"{result.parameters:,}", f"{result.steps:,}", _cell(result.tokens_per_second, ",.0f"),
             _cell(result.best_dev_loss, ".4f"), *(_cell(result.scores.get(key), ".2f") for _, key in columns),
             _cell(result.sentences_per_second, ",.0f")] for result in results]
    return "".join("| " + " | ".join(cells) + " |\n" for cells in [header, ["---"] * len(header), *rows])


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _write_reports(results: Sequence[Result], columns: Sequence[tuple[str, str]], table: str, scored_on: str | None,
                   out: Path, max_time: float) -> list[Path]:
    """Write out/compare.md (the table and what it measured) and out/compare.json (every figure)."""
    scored = f"scores on the {scored_on} set ({results[0].scored:,} inputs, greedy)" if scored_on else "no scores"
    note = (f"{len(results)} variants trained one after another for {max_time:g} s each; {scored}. Target tokens/s: "
            "median of the training log's windows. Run directories: one per variant beside this file; dev loss "
            "against training time: curves.png.")
    summary = {"max_time": max_time, "scored_on": scored_on, "columns": dict(columns),
               "variants": [dataclasses.asdict(result) for result in results]}
    texts = {out / "compare.md": f"# Comparison\n\n{note}\n\n{table}",
             out / "compare.json": json.dumps(summary, indent=2) + "\n"}
    try:
        for path, text in texts.items():
            write_text_atomically(path, text)
    except OSError as error:
        raise RunDirectoryError(f"{out}: cannot write the comparison: {error.strerror}") from error
    return list(texts)


def _can_draw() -> bool:
    try:
        plot.figure_class()
    except Seq2SeqError:
        logger.warning("matplotlib is not installed: curves.png will not be drawn (pip install 'seq2seq[plot]')")
        return False
    return True


def _draw_dev_losses(directories: Sequence[Path], path: Path) -> bool:
    """Draw every variant's dev loss against training time into path; False when no dev loss was logged."""
    series = [curve for directory in directories for curve in curves.run_series(directory, "time")
              if (curve.split, curve.metric) == ("dev", "loss")]
    if series:
        curves.save_curves(series, path, "time")
    else:
        logger.info("compare: no dev loss was logged (no dev data): curves.png not drawn")
    return bool(series)
