"""Checkpoint averaging: train.keep_last keeps the newest numbered checkpoints; `seq2seq average` writes their mean
as a run directory that loads (translation and language models), and refuses checkpoints of different models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from seq2seq import api
from seq2seq.config import Config, apply_overrides
from seq2seq.errors import CheckpointError
from seq2seq.tasks.lm import TextGenerator, train_language_model
from seq2seq.training import rundir
from seq2seq.training.averaging import AVERAGED, average_checkpoints, last_checkpoints
from seq2seq.training.checkpoint import load_checkpoint, save_checkpoint
from tests.cli.test_cli import model_tensors, one_line_error, run_cli
from tests.conftest import toy_pairs

TINY = ["model.hidden_size=16", "model.embedding_size=8", "data.src.kind=word", "data.tgt.kind=word",
        "data.src.split_punctuation=false", "data.tgt.split_punctuation=false", "train.precision=fp32",
        "train.threads=1", "data.batch_size=16", "train.epochs=0"]
KEPT = [30, 35, 40]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy model trained 40 steps with a last checkpoint every 5 (8 of them) and train.keep_last=3."""
    out = tmp_path_factory.mktemp("runs") / "copy"
    config = apply_overrides(Config(), [*TINY, "train.max_steps=40", "train.checkpoint_every=5",
                                        "train.eval_every=20", "train.keep_last=3"])
    api.train(config, toy_pairs("copy", 200, seed=1), toy_pairs("copy", 20, seed=2), out)
    return out


def numbered(run: Path, step: int) -> Path:
    return run / f"checkpoint-{step}.safetensors"


def test_keep_last_keeps_exactly_the_newest_k_numbered_checkpoints(run: Path) -> None:
    assert sorted(p.name for p in run.iterdir()) == ["best.safetensors", *sorted(numbered(run, s).name for s in KEPT),
                                                     "config.yaml", "last.safetensors", "metrics.jsonl"]  # no lock
    newest, last = load_checkpoint(numbered(run, 40)), load_checkpoint(run / "last.safetensors")
    assert newest[1] == last[1] and newest[0].keys() == last[0].keys()  # a copy of the last one, optimizer too
    assert all(torch.equal(newest[0][name], last[0][name]) for name in last[0])
    assert load_checkpoint(numbered(run, 30))[1]["training"]["state"]["step"] == 30


def test_last_k_picks_the_newest_kept_checkpoints(run: Path) -> None:
    assert last_checkpoints(run, 2) == [numbered(run, 35), numbered(run, 40)]
    with pytest.raises(CheckpointError, match=r"3 numbered checkpoints .* fewer than --last 4"):
        last_checkpoints(run, 4)


def test_averaging_two_copies_gives_that_checkpoint(run: Path) -> None:
    averaged, metadata = average_checkpoints([numbered(run, 35), numbered(run, 35)])
    expected = model_tensors(numbered(run, 35))
    assert averaged.keys() == expected.keys()
    assert all(torch.equal(averaged[name], expected[name]) for name in expected)
    assert "training" not in metadata and [entry["step"] for entry in metadata[AVERAGED]] == [35, 35]


def test_averaging_two_checkpoints_gives_the_mean_of_their_weights(run: Path) -> None:
    averaged, _ = average_checkpoints([numbered(run, 30), numbered(run, 40)])
    first, second = model_tensors(numbered(run, 30)), model_tensors(numbered(run, 40))
    for name, tensor in averaged.items():
        assert tensor.dtype == torch.float32
        torch.testing.assert_close(tensor, (first[name] + second[name]) / 2, rtol=0, atol=1e-7)
    assert not torch.equal(first["model.generator.weight"], second["model.generator.weight"])


def test_the_averaged_directory_loads_and_translates(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "averaged"
    code, printed, err = run_cli("average", "--model", run, "--last", "2", "--out", out)
    assert code == 0, err
    assert f"averaged 2 checkpoints (steps 35, 40) into {out}" in printed
    assert sorted(p.name for p in out.iterdir()) == ["best.safetensors", "config.yaml"]  # and no lock file
    translator = api.load(out)
    assert isinstance(translator, api.Translator)
    expected, _ = average_checkpoints([numbered(run, 35), numbered(run, 40)])
    loaded = translator.model.state_dict()
    assert all(torch.equal(loaded[name[6:]], tensor) for name, tensor in expected.items())
    lines = tmp_path / "input.txt"
    lines.write_text("a b c\nd e\n", encoding="utf-8")
    code, printed, err = run_cli("translate", "--model", out, "--input", lines)
    assert code == 0 and len(printed.splitlines()) == 2, err
    code, printed, err = run_cli("average", "--checkpoints", run, numbered(run, 40), "--out", tmp_path / "best")
    assert code == 0 and "averaged 2 checkpoints into" in printed, err  # a run directory stands for its best


def test_a_directory_that_a_training_is_writing_is_refused(run: Path, tmp_path: Path) -> None:
    with rundir.locked(tmp_path / "training"):
        line = one_line_error(*run_cli("average", "--model", run, "--last", "2", "--out", tmp_path / "training")[::2])
    assert line.endswith("another training is writing this run directory; wait for it to end or choose another "
                         "--out"), line
    assert list((tmp_path / "training").iterdir()) == []


def changed_shape(tensors: dict[str, torch.Tensor], metadata: dict) -> None:
    tensors["model.generator.weight"] = tensors["model.generator.weight"][:-1]


def extra_tensor(tensors: dict[str, torch.Tensor], metadata: dict) -> None:
    tensors["model.extra"] = torch.zeros(2)


def other_model_config(tensors: dict[str, torch.Tensor], metadata: dict) -> None:
    metadata["config"]["model"]["dropout"] = 0.5


def other_integer(tensors: dict[str, torch.Tensor], metadata: dict) -> None:
    tensors["model.counter"] = torch.tensor([2])


@pytest.mark.parametrize(("change", "message"), [
    (changed_shape, "model.generator.weight is torch.float32 (13, 16) where"),
    (extra_tensor, "its tensors differ from those of"),
    (other_model_config, "its task, data or model settings, tokenizers or vocabularies differ"),
    (other_integer, "the integer tensor model.counter differs"),
])
def test_mismatched_checkpoints_are_a_one_line_error_naming_the_file(
        run: Path, tmp_path: Path, change: Callable[[dict[str, torch.Tensor], dict], None], message: str) -> None:
    tensors, metadata = load_checkpoint(numbered(run, 40))
    first, other = tmp_path / "first.safetensors", tmp_path / "other.safetensors"
    if change is other_integer:  # both hold the integer tensor, with different values
        save_checkpoint(first, {**tensors, "model.counter": torch.tensor([1])}, metadata)
    else:
        save_checkpoint(first, tensors, metadata)
    change(tensors, metadata)
    save_checkpoint(other, tensors, metadata)
    line = one_line_error(*run_cli("average", "--checkpoints", first, other, "--out", tmp_path / "out")[::2])
    assert line.startswith(f"seq2seq average: error: {other}: ") and message in line, line
    assert not (tmp_path / "out").exists()


def test_train_settings_may_differ_and_bad_arguments_are_one_line_errors(run: Path, tmp_path: Path) -> None:
    tensors, metadata = load_checkpoint(numbered(run, 40))
    metadata["config"]["train"]["max_steps"] = 80  # a resumed run may change train.*: still one model
    save_checkpoint(tmp_path / "resumed.safetensors", tensors, metadata)
    average_checkpoints([numbered(run, 30), tmp_path / "resumed.safetensors"])
    for args, message in ((["--model", run], "--model needs --last K"),
                          (["--model", run, "--last", "0"], "--last must be at least 1"),
                          (["--model", tmp_path / "none", "--last", "2"], "no such run directory"),
                          (["--checkpoints", numbered(run, 30), "--last", "2"], "--last applies to --model"),
                          (["--checkpoints", numbered(run, 30)], "one of the checkpoints to average")):
        line = one_line_error(*run_cli("average", *args, "--out", run)[::2])
        assert message in line, line


def test_averaged_language_model_loads_and_generates(tmp_path: Path) -> None:
    config = apply_overrides(Config(), ["data.entries=line", "model.hidden_size=16", "model.embedding_size=8",
                                        "data.window=12", "data.batch_size=8", "train.precision=fp32",
                                        "train.epochs=3", "train.keep_last=2", "train.sample_temperatures=[]"])
    train_language_model(config, ["the cat sat on the mat"] * 20, out_dir=tmp_path / "lm")
    code, printed, err = run_cli("average", "--model", tmp_path / "lm", "--last", "2", "--out", tmp_path / "avg")
    assert code == 0 and "try: seq2seq generate" in printed, err
    generator = api.load(tmp_path / "avg")
    assert isinstance(generator, TextGenerator)
    assert len(generator.generate("the", temperature=0, max_length=5)[0]) > len("the")
