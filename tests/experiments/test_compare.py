"""`seq2seq compare` end to end on two tiny variants, its one-line errors, and generate's temperature sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seq2seq.config import Config, apply_overrides
from seq2seq.experiments import compare
from seq2seq.tasks import lm
from tests.cli.test_cli import one_line_error, run_cli
from tests.conftest import toy_pairs

TINY = ["--set", "model.hidden_size=16", "--set", "model.embedding_size=8", "--set", "train.epochs=0",
        "--set", "train.eval_every=5", "--set", "data.tgt.kind=word", "--set", "data.tgt.split_punctuation=false"]


def write_pairs(path: Path, count: int, seed: int) -> Path:
    path.write_text("".join(f"{p.src}\t{p.tgt}\n" for p in toy_pairs("reverse", count, seed)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """LSTM against GRU, 3 seconds each, scored on a test file; the folder and what compare printed."""
    folder = tmp_path_factory.mktemp("compare")
    data = [write_pairs(folder / f"{name}.tsv", count, seed) for name, count, seed in
            (("train", 300, 1), ("dev", 20, 2), ("test", 30, 3))]
    out = folder / "out"
    code, printed, err = run_cli("compare", "--train", data[0], "--dev", data[1], "--test", data[2], "--out", out,
                                 "--max-time", "3", *TINY, "model.rnn=lstm", "model.rnn=gru")
    assert code == 0, err
    return out, printed


@pytest.mark.slow  # compared trains two variants for 3 s each
def test_compare_table_holds_both_variants_with_sane_figures(compared: tuple[Path, str]) -> None:
    out, printed = compared
    summary = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    assert summary["scored_on"] == "test" and summary["max_time"] == 3
    assert summary["columns"] == {"exact match %": "exact_match", "PER %": "wer"}  # characters in, symbols out: G2P
    lstm, gru = summary["variants"]
    assert (lstm["name"], gru["name"]) == ("rnn=lstm", "rnn=gru")
    for row in (lstm, gru):
        assert row["parameters"] > 0 and row["steps"] > 0 and row["tokens_per_second"] > 0
        assert row["best_dev_loss"] > 0 and row["sentences_per_second"] > 0 and row["scored"] == 30
        assert 0 <= row["scores"]["exact_match"] <= 100 and row["scores"]["wer"] >= 0
        assert (out / row["name"] / "best.safetensors").is_file()
    assert 0 < gru["parameters"] < lstm["parameters"]  # three gates against four, at the same sizes
    table = (out / "compare.md").read_text(encoding="utf-8")
    header = ["variant", "parameters", "updates", "target tokens/s", "best dev loss", "exact match %", "PER %",
              "sentences/s"]
    assert "| " + " | ".join(header) + " |" in table
    assert f"| rnn=gru | {gru['parameters']:,} | {gru['steps']:,} |" in table
    assert printed.startswith(table.split("\n\n", 2)[2])  # the table, printed too
    assert printed.endswith(f"written: {out / 'compare.md'}, {out / 'compare.json'}, {out / 'curves.png'}\n")
    assert (out / "curves.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow  # compared trains two variants for 3 s each
def test_steps_and_best_loss_come_from_the_run_log(compared: tuple[Path, str]) -> None:
    out, _ = compared
    rows = [json.loads(line) for line in (out / "rnn=gru" / "metrics.jsonl").read_text().splitlines()]
    steps, _, best = compare.training_figures(out / "rnn=gru")
    assert steps == rows[-1]["step"] and best == min(row["loss"] for row in rows if row["event"] == "eval")


def test_variants_are_named_after_their_overrides() -> None:
    assert compare.parse_variant("model.rnn=gru, model.hidden_size=32") == compare.Variant(
        "rnn=gru,hidden_size=32", ("model.rnn=gru", "model.hidden_size=32"))
    assert compare.parse_variant("data.src.kind=word").name == "src.kind=word"
    assert compare.parse_variant("").name == "base"


def test_without_dev_data_the_table_has_no_scores_and_no_curves(tmp_path: Path) -> None:
    """The base config ('') alone, without --dev: training figures only."""
    data = write_pairs(tmp_path / "train.tsv", 100, 1)
    code, printed, err = run_cli("compare", "--train", data, "--out", tmp_path / "out", "--max-time", "1", *TINY, "")
    assert code == 0, err
    row = printed.splitlines()[2]
    assert row.startswith("| base | ") and row.endswith(" | - | - | - | - |")
    assert printed.endswith(f"written: {tmp_path / 'out' / 'compare.md'}, {tmp_path / 'out' / 'compare.json'}\n")
    assert not (tmp_path / "out" / "curves.png").exists()


def test_language_models_are_compared_on_perplexity(tmp_path: Path) -> None:
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\n" * 30, encoding="utf-8")
    code, printed, err = run_cli("compare", "--task", "lm", "--train", text, "--dev", text, "--out", tmp_path / "out",
                                 "--max-time", "1", *TINY[:6], "--set", "data.entries=line", "model.rnn=gru")
    assert code == 0, err
    assert printed.splitlines()[0].endswith("| best dev loss | perplexity | bpc | sentences/s |")
    variant = json.loads((tmp_path / "out" / "compare.json").read_text())["variants"][0]
    assert variant["scores"]["perplexity"] > 1 and variant["sentences_per_second"] is None and variant["scored"] == 30


def test_bad_variants_fail_before_any_training(tmp_path: Path) -> None:
    data = write_pairs(tmp_path / "train.tsv", 20, 1)
    args = ("compare", "--train", data, "--out", tmp_path / "out", "--max-time", "1")
    code, _, err = run_cli(*args, "model.rnn=gru", "model.rnnn=lstm")
    assert code == 1 and "unknown config key 'model.rnnn'" in one_line_error(code, err)
    code, _, err = run_cli(*args, "model.rnn=gru", "model.rnn=gru")
    assert code == 1 and "variant rnn=gru is given twice" in one_line_error(code, err)
    code, _, err = run_cli(*args, "model.rnn")
    assert code == 1 and "'model.rnn' is not key=value" in one_line_error(code, err)
    code, _, err = run_cli(*args[:-2], "model.rnn=gru")
    assert code == 2 and "--max-time" in one_line_error(code, err)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # compared trains two variants for 3 s each
def test_an_earlier_run_is_not_mixed_in(compared: tuple[Path, str]) -> None:
    out, _ = compared
    code, _, err = run_cli("compare", "--train", out.parent / "train.tsv", "--out", out, "--max-time", "1",
                           "model.rnn=gru")
    assert code == 1 and "rnn=gru: holds an earlier run" in one_line_error(code, err)


@pytest.fixture(scope="module")
def language_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lm") / "run"
    config = apply_overrides(Config(), ["task=lm", "model.hidden_size=16", "model.embedding_size=8",
                                        "data.window=20", "train.epochs=1"])
    lm.train_language_model(config, ["the cat sat on the mat"] * 20, out_dir=out)
    return out


def test_generate_sweeps_a_temperature_list(language_model: Path) -> None:
    common = ("generate", "--model", language_model, "--num", "2", "--seed", "3", "--max-length", "12")
    code, out, err = run_cli(*common, "--temperature", "0.5,1,2")
    assert code == 0, err
    groups = out.split("# temperature ")[1:]
    assert out.startswith("# temperature 0.5\n") and [group.split("\n")[0] for group in groups] == ["0.5", "1", "2"]
    for value, group in zip(("0.5", "1", "2"), groups, strict=True):
        alone = run_cli(*common, "--temperature", value)[1]  # a single value: no header, as before
        assert group == f"{value}\n{alone}" and alone.count("\n%\n") == 1


def test_a_bad_temperature_list_is_one_line(language_model: Path) -> None:
    code, _, err = run_cli("generate", "--model", language_model, "--temperature", "0.5,x")
    assert code == 2 and "invalid temperature '0.5,x'" in one_line_error(code, err)
    code, out, err = run_cli("generate", "--model", language_model, "--temperature", "0.5,-1")
    assert (code, out) == (1, "") and "temperature must be > 0, not -1.0" in one_line_error(code, err)
