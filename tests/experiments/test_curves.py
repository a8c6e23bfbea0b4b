"""Training curves: metrics.jsonl read into series, drawn one panel per metric and one curve per run and split, and
`seq2seq plot` with its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seq2seq import api
from seq2seq.config import Config, apply_overrides
from seq2seq.errors import DataError
from seq2seq.experiments import curves
from tests.cli.test_cli import one_line_error, run_cli
from tests.conftest import toy_pairs

pytest.importorskip("matplotlib")

ROWS = [
    {"event": "train", "step": 1, "epoch": 0, "elapsed": 0.5, "tokens": 100, "loss": 3.0, "perplexity": 20.1,
     "tokens_per_second": 200, "lr": 0.001, "time": 1.0},
    {"event": "eval", "step": 2, "epoch": 0, "elapsed": 1.5, "loss": 2.5, "perplexity": 12.2, "bleu": 1.0, "lr": 0.001,
     "time": 2.0},
    {"event": "train", "step": 50, "epoch": 1, "elapsed": 9.0, "tokens": 5000, "loss": 2.0, "perplexity": 7.4,
     "tokens_per_second": 600, "lr": 0.001, "time": 3.0},
    {"event": "eval", "step": 60, "epoch": 1, "elapsed": 11.0, "loss": 1.5, "perplexity": 4.5, "bleu": 9.0,
     "lr": 0.0005, "time": 4.0},
]


def write_run(folder: Path, rows: list[dict[str, object]] = ROWS) -> Path:
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return folder


def test_series_split_train_and_dev_and_keep_the_learning_rate_whole(tmp_path: Path) -> None:
    series = {(s.split, s.metric): s for s in curves.run_series(write_run(tmp_path / "lstm"), "steps")}
    assert set(series) == {("train", "loss"), ("dev", "loss"), ("train", "perplexity"), ("dev", "perplexity"),
                           ("train", "tokens_per_second"), ("dev", "bleu"), ("", "lr")}
    assert (series["dev", "loss"].x, series["dev", "loss"].y) == ([2.0, 60.0], [2.5, 1.5])
    assert series["", "lr"].x == [1.0, 2.0, 50.0, 60.0] and series["", "lr"].label == "lstm"
    assert series["dev", "bleu"].label == "lstm (dev)"
    by_time = {(s.split, s.metric): s for s in curves.run_series(tmp_path / "lstm", "time")}
    assert by_time["train", "loss"].x == [0.5, 9.0]


def test_figure_has_one_panel_per_metric_and_one_curve_per_run_and_split(tmp_path: Path) -> None:
    series = [s for run in ("lstm", "gru") for s in curves.run_series(write_run(tmp_path / run))]
    figure = curves.save_curves(curves.select(series, "loss"), tmp_path / "loss.png")
    assert len(figure.axes) == 1
    assert sorted(line.get_label() for line in figure.axes[0].get_lines()) == [
        "gru (dev)", "gru (train)", "lstm (dev)", "lstm (train)"]
    assert (tmp_path / "loss.png").read_bytes().startswith(b"\x89PNG")
    everything = curves.draw(curves.select(series, None))
    assert [axes.get_ylabel() for axes in everything.axes] == ["loss", "perplexity", "tokens_per_second", "lr", "bleu"]
    assert [len(axes.get_lines()) for axes in everything.axes] == [4, 4, 2, 2, 2]


def test_plot_command_on_a_trained_run(tmp_path: Path) -> None:
    """A real run's metrics.jsonl: `plot --metric loss --x time` draws its training and dev loss."""
    config = apply_overrides(Config(), ["model.hidden_size=16", "model.embedding_size=8", "train.epochs=2",
                                        "train.eval_every=3", "data.batch_size=16"])
    api.train(config, toy_pairs("copy", 64, seed=1), toy_pairs("copy", 8, seed=2), tmp_path / "tiny")
    code, out, err = run_cli("plot", tmp_path / "tiny", write_run(tmp_path / "other"), "--metric", "loss",
                             "--x", "time", "--out", tmp_path / "curves.png")
    assert code == 0, err
    assert out.strip() == f"{tmp_path / 'curves.png'}: 4 curves of loss from 2 runs"
    assert (tmp_path / "curves.png").stat().st_size > 1000
    dev = next(s for s in curves.run_series(tmp_path / "tiny") if (s.split, s.metric) == ("dev", "loss"))
    assert dev.x == [3.0, 6.0, 8.0]  # 64 pairs in batches of 16: 4 steps an epoch, evaluated every 3 and at the end


def test_plot_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("plot", tmp_path / "empty", "--out", tmp_path / "x.png")
    assert code == 1 and "empty: no metrics.jsonl" in one_line_error(code, err)
    code, _, err = run_cli("plot", write_run(tmp_path / "run"), "--metric", "bleu_score", "--out", tmp_path / "x.png")
    assert code == 1 and "unknown metric 'bleu_score'; the runs have: bleu, loss, lr, perplexity, tokens_per_second" \
        in one_line_error(code, err)
    code, _, err = run_cli("plot", tmp_path / "run", "--x", "epochs", "--out", tmp_path / "x.png")
    assert code == 2 and "--x" in one_line_error(code, err)
    assert not (tmp_path / "x.png").exists()


def test_bad_rows_name_the_line(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", ROWS[:1])
    with (run / "metrics.jsonl").open("a", encoding="utf-8") as log:
        log.write('{"event": "train", "step": 2\n')
    with pytest.raises(DataError, match=r"metrics.jsonl:2: invalid JSON"):
        curves.read_metrics(run)
    (run / "metrics.jsonl").write_text('{"step": 1}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"metrics.jsonl:1: expected an object with an event"):
        curves.read_metrics(run)
