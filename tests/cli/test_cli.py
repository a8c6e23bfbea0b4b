"""Tests for the command line: train / translate / evaluate on a tiny copy task, one-line errors, --resume."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seq2seq import cli
from seq2seq.cli import commands, flags, train
from seq2seq.serve.settings import Limits, Settings
from seq2seq.training.checkpoint import load_checkpoint

TINY = ["--tokens", "word", "model.hidden_size=16", "model.embedding_size=8",
        "data.src.split_punctuation=false", "data.tgt.split_punctuation=false"]
RESUMABLE = [*TINY, "train.precision=fp32", "data.dev_size=0", "train.epochs=0", "train.eval_every=0"]
LETTERS = "abcdef"


def write_copy_task(path: Path, lines: int = 200, seed: int = 0) -> Path:
    """A TSV copy task: short space-separated letter sequences mapped to themselves."""
    rng = random.Random(seed)
    rows = [" ".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 5))) for _ in range(lines)]
    path.write_text("".join(f"{row}\t{row}\n" for row in rows), encoding="utf-8")
    return path


def run_cli(*args: str | Path) -> tuple[int, str, str]:
    """Run seq2seq.cli.main in-process; returns (exit code, stdout, stderr); argparse exits become codes."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def run_module(*args: str | Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run `python -m seq2seq.cli` as a subprocess (one torch thread: tiny models, shared cores)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "seq2seq.cli", *map(str, args)], input=stdin, text=True,
                          capture_output=True, timeout=120, check=False, env=env)


def one_line_error(code: int, err: str) -> str:
    """Assert a failing exit code and exactly one line on stderr; return that line."""
    assert code != 0
    assert len(err.splitlines()) == 1, err
    return err.strip()


def metrics_steps(run: Path) -> list[int]:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["step"] for line in lines]


def model_tensors(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_checkpoint(path)[0].items() if k.startswith("model.")}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_copy_task(tmp_path_factory.mktemp("data") / "copy.tsv")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data: Path) -> tuple[Path, str]:
    """A run directory trained for 2 epochs with --dev and --test, and the train command's stdout."""
    run = tmp_path_factory.mktemp("runs") / "copy"
    code, out, err = run_cli("train", "--train", data, "--dev", data, "--test", data, "--out", run,
                             "--epochs", "2", *TINY)
    assert code == 0, err
    return run, out


# ---- train / translate / evaluate
def test_train_writes_run(trained: tuple[Path, str]) -> None:
    """Training writes checkpoints, the config and a metrics log, and reports the test scores."""
    run, out = trained
    for name in ("best.safetensors", "last.safetensors", "config.yaml", "metrics.jsonl"):
        assert (run / name).is_file(), name
    assert not [p for p in run.iterdir() if p.name.startswith(".")]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["epoch"] for r in records if r["event"] == "eval"] == [1, 2]
    assert "BLEU =" in out and "chrF =" in out and f"model saved in {run}" in out
    assert "ROUGE" not in out and "distinct" not in out  # the scores of a translation task, not every metric


def test_translate_file(trained: tuple[Path, str], tmp_path: Path) -> None:
    """One output line per input line, unknown words and blank lines included."""
    run, _ = trained
    source = tmp_path / "in.txt"
    source.write_text("a b c\nf\nzz a\n\nd e f a b\n", encoding="utf-8")
    code, out, err = run_cli("translate", "--model", run, "--input", source, "--output", tmp_path / "out.txt")
    assert code == 0, err
    assert out == ""
    lines = (tmp_path / "out.txt").read_text(encoding="utf-8").split("\n")
    assert len(lines) == 6 and lines[-1] == ""
    assert all(set(line.split()) <= {*LETTERS, "<unk>"} for line in lines)  # no <pad>, <s> or </s>
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.txt"]


@pytest.mark.slow
def test_translate_stdin_to_stdout_subprocess(trained: tuple[Path, str]) -> None:
    """`python -m seq2seq.cli translate` reads stdin and writes one line per input line to stdout."""
    run, _ = trained
    result = run_module("translate", "--model", run, stdin="a b\nc d e\nf\n")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3


@pytest.mark.slow
def test_module_exits_with_the_code_of_main(tmp_path: Path) -> None:
    """`python -m seq2seq.cli` runs main and exits with the code it returns: 1 and one error line on a failure."""
    missing = tmp_path / "missing"
    result = run_module("translate", "--model", missing, stdin="a b\n")
    assert result.returncode == 1
    assert one_line_error(result.returncode, result.stderr) == (
        f"seq2seq translate: error: {missing}: no such model directory or checkpoint file")
    assert result.stdout == ""


def test_evaluate_json(trained: tuple[Path, str], data: Path) -> None:
    """--json prints one JSON object with every score."""
    run, _ = trained
    code, out, err = run_cli("evaluate", "--model", run, "--data", data, "--json")
    assert code == 0, err
    assert len(out.splitlines()) == 1
    scores = json.loads(out)
    assert {"bleu", "chrf", "exact_match", "wer", "cer", "perplexity"} <= scores.keys()
    for name in ("bleu", "chrf", "exact_match"):
        assert 0.0 <= scores[name] <= 100.0, name
    for name in ("wer", "cer"):
        assert scores[name] >= 0.0 and math.isfinite(scores[name]), name
    assert 1.0 <= scores["perplexity"] < 100.0


def test_evaluate_text(trained: tuple[Path, str], data: Path) -> None:
    """Without --json the scores are printed as text."""
    code, out, _ = run_cli("evaluate", "--model", trained[0], "--data", data)
    assert code == 0 and out.startswith("BLEU = ") and "perplexity = " in out


# ---- errors: non-zero exit, one line on stderr
def test_bad_flag() -> None:
    """argparse errors exit 2 with one line."""
    code, _, err = run_cli("train", "--bogus", "--out", "x")
    assert code == 2
    assert "--bogus" in one_line_error(code, err)
    code, _, err = run_cli()
    assert code == 2 and len(err.splitlines()) == 1
    code, _, err = run_cli("train", "--out", "x", "--epochs", "two")
    assert code == 2 and "--epochs" in one_line_error(code, err)


def test_unknown_override_key(data: Path, tmp_path: Path) -> None:
    """An unknown key=value override is named."""
    code, _, err = run_cli("train", "--train", data, "--out", tmp_path / "run", "model.hiden_size=16")
    assert "'model.hiden_size'" in one_line_error(code, err)
    assert not (tmp_path / "run").exists()


def test_bad_override_value(data: Path, tmp_path: Path) -> None:
    """A value of the wrong type or outside the choices is one line."""
    code, _, err = run_cli("train", "--train", data, "--out", tmp_path / "run", "model.rnn=foo")
    assert "model.rnn" in one_line_error(code, err)


def test_an_unknown_model_kind_is_one_line_naming_the_known_ones(data: Path, tmp_path: Path) -> None:
    """model.arch is checked by the model registry before anything is written."""
    for arguments in (["--arch", "mamba"], ["model.arch=mamba"]):
        code, _, err = run_cli("train", "--train", data, "--out", tmp_path / "run", *arguments)
        line = one_line_error(code, err)
        assert "model.arch: unknown architecture 'mamba'" in line and "transformer" in line, line
        assert not (tmp_path / "run").exists()


def test_bad_tsv_line(tmp_path: Path) -> None:
    """A line without a tab is reported as file:line."""
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\ta\nb\tb\nc c\n", encoding="utf-8")
    code, _, err = run_cli("train", "--train", bad, "--out", tmp_path / "run", *TINY)
    assert f"{bad}:3:" in one_line_error(code, err)


def test_missing_train_file(tmp_path: Path) -> None:
    code, _, err = run_cli("train", "--train", tmp_path / "nope.tsv", "--out", tmp_path / "run")
    assert str(tmp_path / "nope.tsv") in one_line_error(code, err)


def test_train_requires_train_data(tmp_path: Path) -> None:
    code, _, err = run_cli("train", "--out", tmp_path / "run")
    assert "--train" in one_line_error(code, err)


@pytest.mark.slow
def test_missing_model_dir_subprocess(tmp_path: Path) -> None:
    """The real process prints exactly one line on stderr (no traceback, no log noise) and exits 1."""
    missing = tmp_path / "no-such-run"
    result = run_module("translate", "--model", missing, stdin="a\n")
    assert result.returncode == 1
    assert str(missing) in one_line_error(result.returncode, result.stderr)
    assert result.stdout == ""


def test_missing_model_dir(tmp_path: Path) -> None:
    for command in (["translate", "--input", "x"], ["evaluate", "--data", "x"]):
        code, _, err = run_cli(*command, "--model", tmp_path / "none")
        assert str(tmp_path / "none") in one_line_error(code, err)


def test_unwritable_output(trained: tuple[Path, str], tmp_path: Path) -> None:
    """--output in a missing directory is a one-line error, not a traceback."""
    source = tmp_path / "in.txt"
    source.write_text("a b\n", encoding="utf-8")
    target = tmp_path / "no-such-dir" / "out.txt"
    code, _, err = run_cli("translate", "--model", trained[0], "--input", source, "--output", target)
    assert str(target) in one_line_error(code, err)


def test_corrupted_checkpoint(trained: tuple[Path, str], data: Path, tmp_path: Path) -> None:
    """Garbage in best.safetensors is a one-line error naming that file, for translate and evaluate."""
    run = Path(shutil.copytree(trained[0], tmp_path / "run"))
    (run / "best.safetensors").write_bytes(b"\x00garbage" * 100)
    source = tmp_path / "in.txt"
    source.write_text("a b\n", encoding="utf-8")
    code, _, err = run_cli("translate", "--model", run, "--input", source)
    assert "best.safetensors" in one_line_error(code, err)
    code, _, err = run_cli("evaluate", "--model", run, "--data", data)
    assert "best.safetensors" in one_line_error(code, err)
    code, _, err = run_cli("translate", "--model", run / "last.safetensors", "--input", source)
    assert code == 0, err


@pytest.mark.parametrize("command", [[], ["train"], ["translate"], ["evaluate"]])
def test_help(command: list[str]) -> None:
    """--help works for the program and each subcommand."""
    code, out, _ = run_cli(*command, "--help")
    assert code == 0
    assert out.startswith("usage: seq2seq")


# ---- --resume
def test_resume_without_run(data: Path, tmp_path: Path) -> None:
    """--resume on a directory with no last checkpoint is a one-line error."""
    code, _, err = run_cli("train", "--train", data, "--out", tmp_path / "run", "--resume", *RESUMABLE)
    assert "last.safetensors" in one_line_error(code, err)


def test_resume_continues(data: Path, tmp_path: Path) -> None:
    """A resumed run with a larger step budget appends to metrics.jsonl past the first run's last step."""
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--train", data, "--out", run, *RESUMABLE, "train.max_steps=6")
    assert code == 0, err
    assert max(metrics_steps(run)) == 6
    code, _, err = run_cli("train", "--train", data, "--out", run, "--resume", *RESUMABLE,
                           "train.max_steps=12")
    assert code == 0, err
    steps = metrics_steps(run)
    assert max(steps) == 12 and [s for s in steps if s > 6]
    assert steps == sorted(steps)
    state = load_checkpoint(run / "last.safetensors")[1]["training"]["state"]
    assert state["step"] == 12 and state["finished"]


def test_resume_is_exact(data: Path, tmp_path: Path) -> None:
    """12 steps straight and 6 + (resume) 6 steps give bit-identical weights."""
    straight, resumed = tmp_path / "a", tmp_path / "b"
    assert run_cli("train", "--train", data, "--out", straight, *RESUMABLE, "train.max_steps=12")[0] == 0
    assert run_cli("train", "--train", data, "--out", resumed, *RESUMABLE, "train.max_steps=6")[0] == 0
    assert not all(torch.equal(a, b) for a, b in zip(model_tensors(straight / "last.safetensors").values(),
                                                      model_tensors(resumed / "last.safetensors").values(),
                                                      strict=True))
    code, _, err = run_cli("train", "--train", data, "--out", resumed, "--resume", *RESUMABLE,
                           "train.max_steps=12")
    assert code == 0, err
    a, b = model_tensors(straight / "last.safetensors"), model_tensors(resumed / "last.safetensors")
    assert a.keys() == b.keys()
    different = [name for name in a if not torch.equal(a[name], b[name])]
    assert not different, f"resumed weights differ: {different}"


def test_key_value_overrides_stand_anywhere_among_the_flags() -> None:
    parser = commands.build_parser()
    args = flags.parse_intermixed(parser, ["train", "--train", "x.tsv", "train.seed=1", "--out", "run",
                                           "train.max_steps=2", "--tokens", "word"])
    assert (args.command, args.train, args.out) == ("train", "x.tsv", "run")
    assert args.overrides == ["train.seed=1", "train.max_steps=2"]
    config = train.train_config(args)
    assert (config.train.seed, config.train.max_steps, config.data.src.kind) == (1, 2, "word")


def test_max_time_trains_for_the_budget_unless_the_epochs_are_set(tmp_path: Path) -> None:
    def epochs(*line: str) -> int:
        args = flags.parse_intermixed(commands.build_parser(), ["train", "--train", "x.tsv", "--out", "run", *line])
        return train.train_config(args).train.epochs

    capped = tmp_path / "capped.yaml"
    capped.write_text("train:\n  epochs: 7\n", encoding="utf-8")
    plain = tmp_path / "plain.yaml"
    plain.write_text("train:\n  lr: 0.002\n", encoding="utf-8")
    assert epochs() == epochs("--config", str(plain)) == 20  # no budget: the default cap
    assert epochs("--max-time", "60") == epochs("--max-time", "60", "--config", str(plain)) == 0
    assert epochs("--max-time", "60", "--epochs", "3") == 3
    assert epochs("--max-time", "60", "train.epochs=4") == 4
    assert epochs("--max-time", "60", "--config", str(capped)) == 7


def test_prepare_takes_the_data_flags_of_train() -> None:
    line = ["prepare", "--train", "x.tsv", "--tokens", "word", "--out", "dir", "--tgt-tokens", "char",
            "data.lowercase=true"]
    args = flags.parse_intermixed(commands.build_parser(), line)
    assert flags.token_overrides(args) == ["data.src.kind=word", "data.tgt.kind=char"]
    assert args.overrides == ["data.lowercase=true"]


def test_serve_flags_default_to_the_server_settings() -> None:
    args = flags.parse_intermixed(commands.build_parser(), ["serve", "--model", "m", "--max-texts", "3"])
    settings = flags.from_flags(Settings, args, limits=flags.from_flags(Limits, args))
    assert settings == Settings(limits=Limits(max_texts=3))
