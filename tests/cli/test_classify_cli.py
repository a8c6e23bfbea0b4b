"""Tests for the classification command line: train --task classify, classify, evaluate (--json, --confusion)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seq2seq.data.pairs import Pair
from tests.cli.test_cli import one_line_error, run_cli
from tests.tasks.test_classification import TINY, majority_pairs


def write_labelled(path: Path, pairs: list[Pair]) -> Path:
    path.write_text("".join(f"{pair.src}\t{pair.tgt}\n" for pair in pairs), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier trained through the command line on the majority-symbol task."""
    folder = tmp_path_factory.mktemp("classify")
    train = write_labelled(folder / "train.tsv", majority_pairs(1000, 1))
    dev = write_labelled(folder / "dev.tsv", majority_pairs(100, 2))
    test = write_labelled(folder / "test.tsv", majority_pairs(100, 3))
    code, out, err = run_cli("train", "--task", "classify", "--train", train, "--dev", dev, "--test", test,
                             "--out", folder / "run", "--epochs", "6", *TINY, "train.metric=accuracy")
    assert code == 0, err
    assert "accuracy = " in out and "macro-F1 = " in out and "seq2seq classify --model" in out
    return folder


def test_classify_writes_one_line_per_text(run: Path) -> None:
    inputs = run / "in.txt"
    inputs.write_text("a a b\nc c c a\nb\n", encoding="utf-8")
    code, out, err = run_cli("classify", "--model", run / "run", "--input", inputs)
    assert code == 0, err
    assert out.splitlines() == ["a", "c", "b"]
    code, out, _ = run_cli("classify", "--model", run / "run", "--input", inputs, "--top-k", "2", "--scores")
    fields = [line.split("\t") for line in out.splitlines()]
    assert [row[0] for row in fields] == ["a", "c", "b"] and all(len(row) == 4 for row in fields)
    assert all(1.0 >= float(row[1]) >= float(row[3]) >= 0.0 for row in fields)
    code, out, _ = run_cli("classify", "--model", run / "run", "--input", inputs, "--top-k", "3")
    assert all(sorted(line.split("\t")) == ["a", "b", "c"] for line in out.splitlines())


def test_evaluate_json_and_confusion(run: Path) -> None:
    pytest.importorskip("matplotlib")
    png = run / "confusion.png"
    code, out, err = run_cli("evaluate", "--model", run / "run", "--data", run / "test.tsv", "--json",
                             "--confusion", png)
    assert code == 0, err
    scores = json.loads(out)
    assert scores["accuracy"] >= 90 and scores["macro_f1"] >= 90
    assert set(scores["per_class"]) == {"a", "b", "c"}
    assert set(scores["per_class"]["a"]) == {"precision", "recall", "f1", "support"}
    assert png.read_bytes().startswith(b"\x89PNG")


def test_classify_plots_attention(run: Path) -> None:
    pytest.importorskip("matplotlib")
    inputs = run / "plot.txt"
    inputs.write_text("a a b\nc\n", encoding="utf-8")
    code, _, err = run_cli("classify", "--model", run / "run", "--input", inputs, "--plot-attention", run / "plots")
    assert code == 0, err
    assert sorted(p.name for p in (run / "plots").iterdir()) == ["0001.png", "0002.png"]


@pytest.mark.parametrize(("args", "message"), [
    (["evaluate", "--strategy", "beam"], "decoding flags do not apply to a classifier (given: strategy)"),
    (["translate"], "a classifier, not a translation model (use seq2seq classify)"),
])
def test_commands_of_other_tasks_are_one_line_errors(run: Path, args: list[str], message: str) -> None:
    extra = ["--data", run / "test.tsv"] if args[0] == "evaluate" else []
    code, _, err = run_cli(args[0], "--model", run / "run", *extra, *args[1:])
    assert message in one_line_error(code, err)


def test_bad_training_data_is_a_one_line_error(tmp_path: Path) -> None:
    data = tmp_path / "bad.tsv"
    data.write_text("a b\tx\nc d\t\n", encoding="utf-8")
    code, _, err = run_cli("train", "--task", "classify", "--train", data, "--out", tmp_path / "run", *TINY)
    assert one_line_error(code, err) == f"seq2seq train: error: {data}:2: empty label"
