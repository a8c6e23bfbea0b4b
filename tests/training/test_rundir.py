"""Run-directory faults: a second training refused, a lock a killed run does not leave stale, a run directory that
is a file or read-only, a disk filling up during a checkpoint write, and non-finite losses."""

from __future__ import annotations

import errno
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from seq2seq import cli
from seq2seq.config import Config, apply_overrides
from seq2seq.data.pairs import Batch
from seq2seq.data.preparation import prepare_pairs
from seq2seq.errors import CheckpointError, RunDirectoryError, TrainingError
from seq2seq.models.objectives import sequence_losses
from seq2seq.models.seq2seq import Seq2Seq
from seq2seq.training import checkpoint, rundir
from seq2seq.training.checkpoint import load_checkpoint, save_checkpoint
from seq2seq.training.trainer import Trainer, run_training
from tests.conftest import toy_pairs

TINY = ["model.hidden_size=16", "model.embedding_size=8", "train.precision=fp32", "train.threads=1",
        "data.batch_size=8", "train.epochs=0"]


def write_data(folder: Path) -> Path:
    data = folder / "copy.tsv"
    data.write_text("".join(f"{p.src}\t{p.tgt}\n" for p in toy_pairs("copy", 100, seed=1)), encoding="utf-8")
    return data


def start_training(data: Path, run: Path, *extra: str) -> subprocess.Popen[str]:
    """`seq2seq train` for up to a minute, a checkpoint every step."""
    command = [sys.executable, "-m", "seq2seq.cli", "train", "--train", str(data), "--out", str(run), *TINY,
               "train.max_time=60", "train.max_steps=1000000", "train.checkpoint_every=1", "train.eval_every=0",
               *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not path.is_file():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, f"{path} not written within 60 s"
        time.sleep(0.05)


def last_error(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


@contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """folder with a tmpfs mounted on it; skips where mounting is not allowed."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()[:100]})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


BUSY = "another training is writing this run directory; wait for it to end or choose another --out"


def hold_lock(folder: Path) -> subprocess.Popen[str]:
    """Another process that holds folder's lock until killed (within a minute)."""
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom seq2seq.training import rundir\n"
                               "with rundir.locked(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)",
                               str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n", holder.communicate()[1][-2000:]
    return holder


def test_a_lock_refuses_a_second_holder_until_the_first_lets_go_and_writes_no_file(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with rundir.locked(run):
        assert list(run.iterdir()) == []
        with pytest.raises(RunDirectoryError, match=f"^{re.escape(f'{run}: {BUSY}')}$"):
            rundir.check_writable(run)
    rundir.check_writable(run)
    assert list(run.iterdir()) == []


@pytest.mark.slow
def test_a_lock_held_by_another_process_refuses_until_that_process_is_killed(tmp_path: Path) -> None:
    holder = hold_lock(tmp_path)
    try:
        with pytest.raises(RunDirectoryError, match=f"^{re.escape(f'{tmp_path}: {BUSY}')}$"), rundir.locked(tmp_path):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()
    with rundir.locked(tmp_path):
        assert list(tmp_path.iterdir()) == []


def test_the_lock_file_of_an_earlier_version_is_removed_when_the_lock_is_taken(tmp_path: Path) -> None:
    (tmp_path / "train.lock").write_text("123\n")
    with rundir.locked(tmp_path):
        assert list(tmp_path.iterdir()) == []


def test_a_file_system_without_locks_warns_and_goes_unlocked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    def no_locks(descriptor: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(rundir.fcntl, "flock", no_locks)
    with rundir.locked(tmp_path), rundir.locked(tmp_path):
        pass
    assert caplog.text.count(f"{tmp_path}: cannot lock the run directory (No locks available)") == 2


@pytest.mark.slow
def test_a_second_training_is_refused_and_a_killed_one_leaves_no_stale_lock(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, run = write_data(tmp_path), tmp_path / "run"
    first = start_training(data, run)
    try:
        wait_for(run / "last.safetensors", first)
        assert cli.main(["train", "--train", str(data), "--out", str(run), *TINY, "train.max_steps=1"]) == 1
        assert last_error(capsys) == f"seq2seq train: error: {run}: {BUSY}"
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert cli.main(["train", "--train", str(data), "--out", str(run), "--resume", "train.max_steps=1",
                     "train.max_time=0"]) == 0
    assert sorted(path.name for path in run.iterdir() if not path.name.startswith(".")) == [
        "config.yaml", "last.safetensors", "metrics.jsonl"]


def test_a_run_directory_that_is_a_file_fails_before_training(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    data, run = write_data(tmp_path), tmp_path / "run"
    run.write_text("not a folder")
    assert cli.main(["train", "--train", str(data), "--out", str(run), *TINY, "train.max_steps=1"]) == 1
    assert last_error(capsys) == f"seq2seq train: error: {run}: is a file, not a run directory (choose another --out)"
    assert cli.main(["train", "--train", str(data), "--out", str(run / "x"), *TINY, "train.max_steps=1"]) == 1
    assert last_error(capsys) == f"seq2seq train: error: {run / 'x'}: cannot be a run directory: {run} is a file"


def test_a_read_only_run_directory_fails_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_data(tmp_path)
    with tmpfs(tmp_path / "ro", "ro,size=1m") as folder:
        assert cli.main(["train", "--train", str(data), "--out", str(folder / "run"), *TINY]) == 1
        assert last_error(capsys) == (f"seq2seq train: error: {folder}: not writable (read-only file system or no "
                                      "permission); choose another --out")


@pytest.mark.slow
def test_a_full_disk_during_training_is_one_line_and_the_last_checkpoint_still_loads(tmp_path: Path) -> None:
    data = write_data(tmp_path)
    with tmpfs(tmp_path / "small", "size=4m") as folder:
        run = folder / "run"
        process = start_training(data, run)
        wait_for(run / "last.safetensors", process)
        fill(folder / "filler")
        _, err = process.communicate(timeout=120)
        assert process.returncode == 1, err[-2000:]
        line = err.strip().splitlines()[-1]
        assert line.startswith(f"seq2seq train: error: {run}: cannot write") and "No space left on device" in line
        load_checkpoint(run / "last.safetensors")


def fill(path: Path) -> None:
    """Write to path until the file system is full."""
    with open(path, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC


def test_a_failed_checkpoint_write_names_the_folder_and_keeps_the_previous_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, {"w": torch.ones(2)}, {"step": 1})

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint, "save_file", full)
    with pytest.raises(CheckpointError, match=rf"^{tmp_path}: cannot write last.safetensors \(No space left on "
                                              r"device\); the previous checkpoint is kept$"):
        save_checkpoint(path, {"w": torch.zeros(2)}, {"step": 2})
    assert load_checkpoint(path)[1]["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.safetensors"]


def nan_trainer(out: Path, nan_steps: set[int]) -> Trainer:
    """A tiny Trainer whose training loss is NaN at the given (1-based) steps."""
    config = apply_overrides(Config(), [*TINY, "train.max_steps=12", "train.checkpoint_every=1",
                                        "train.eval_every=0", "train.early_stopping=0"])
    prepared = prepare_pairs(config, toy_pairs("copy", 40, seed=1), [])
    model = Seq2Seq(config.model, len(prepared.metadata.vocabs[0]), len(prepared.metadata.vocabs[1]))
    train_loss, dev_loss = sequence_losses(config.train)
    calls = [0]

    def loss(module: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        calls[0] += 1
        value, count = train_loss(module, batch)
        return (value * math.nan if calls[0] in nan_steps else value), count

    return Trainer(model, (loss, dev_loss), config, prepared.examples, [], out, prepared.metadata.to_dict())


def all_finite(path: Path) -> bool:
    tensors, _ = load_checkpoint(path)
    return all(bool(torch.isfinite(t).all()) for t in tensors.values() if t.is_floating_point())


def test_a_non_finite_loss_skips_its_step_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = run_training(nan_trainer(tmp_path, {3, 4, 8}), None, time.monotonic())
    assert state.step == 12 and state.finished
    assert caplog.text.count("the update is skipped") == 3 and "step 3: the loss or its gradient is nan" in caplog.text
    assert all_finite(tmp_path / "last.safetensors") and all_finite(tmp_path / "best.safetensors")


def test_non_finite_losses_in_a_row_stop_the_run(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match=r"^training diverged: the loss was not finite for 5 steps in a row \(up to "
                                            r"step 7\)"):
        run_training(nan_trainer(tmp_path, set(range(3, 13))), None, time.monotonic())
    assert load_checkpoint(tmp_path / "last.safetensors")[1]["training"]["state"]["step"] == 6
    assert all_finite(tmp_path / "last.safetensors")


def test_weights_that_are_not_finite_are_never_written(tmp_path: Path) -> None:
    trainer = nan_trainer(tmp_path, set())
    with torch.no_grad():
        next(trainer.model.parameters())[0] = math.inf
    with pytest.raises(TrainingError, match=r"last\.safetensors: not written: 1 tensors hold NaN or inf"):
        trainer.save_last()
    assert not (tmp_path / "last.safetensors").exists()
