"""Crash safety: training killed with SIGKILL at random moments always leaves a loadable last checkpoint."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seq2seq.training.checkpoint import load_checkpoint, resolve_checkpoint

pytestmark = pytest.mark.slow  # trains in processes it kills

KILLS = 3
# Training time left after the kills: covers each resumed run's setup (inside train.max_time's clock) and a
# short final run, so that no run can reach its time budget before it is killed.
MARGIN_SECONDS = 3.5


def start(data: Path, run: Path, resume: bool, max_time: float) -> subprocess.Popen[str]:
    """Start `seq2seq train` writing a checkpoint every step."""
    command = [sys.executable, "-m", "seq2seq.cli", "train", "--train", str(data), "--out", str(run),
               "model.hidden_size=16", "model.embedding_size=8", "train.precision=fp32", "train.threads=1",
               "train.epochs=0", "train.max_steps=1000000", f"train.max_time={max_time:.2f}",
               "train.checkpoint_every=1", "train.eval_every=0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([*command, *(["--resume"] if resume else [])], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for_new_checkpoint(process: subprocess.Popen[str], path: Path, previous: int | None) -> None:
    """Wait until path exists with a modification time other than previous (the process is training)."""
    deadline = time.monotonic() + 60
    while not path.is_file() or path.stat().st_mtime_ns == previous:
        if process.poll() is not None:
            raise AssertionError(f"training exited early: {process.communicate()[1][-3000:]}")
        assert time.monotonic() < deadline, "no checkpoint written within 60 s"
        time.sleep(0.02)


def check_run_dir(run: Path) -> int:
    """Every checkpoint loads, leftovers are only hidden temporaries, the log parses; returns the step."""
    _, metadata = load_checkpoint(run / "last.safetensors")
    load_checkpoint(resolve_checkpoint(run))
    for path in run.iterdir():
        if path.name.endswith(".safetensors"):
            load_checkpoint(path)
        elif path.name not in ("config.yaml", "metrics.jsonl"):
            assert path.name.startswith(".") and path.name.endswith(".tmp"), f"unexpected file {path.name}"
    for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        json.loads(line)
    return int(metadata["training"]["state"]["step"])


def test_sigkill_at_random_moments_then_resume(tmp_path: Path) -> None:
    """kill -9 at random moments of training that checkpoints every step; resume then finishes."""
    rng = random.Random()
    data = tmp_path / "copy.tsv"
    words = ["".join(rng.choice("abcdef") for _ in range(rng.randint(1, 6))) for _ in range(100)]
    data.write_text("".join(f"{w}\t{w}\n" for w in words), encoding="utf-8")
    run, last = tmp_path / "run", tmp_path / "run" / "last.safetensors"
    pauses = [rng.uniform(0.2, 1.5) for _ in range(KILLS)]
    max_time = sum(pauses) + MARGIN_SECONDS
    steps = [0]
    for round_ in range(KILLS):
        previous = last.stat().st_mtime_ns if last.is_file() else None
        process = start(data, run, round_ > 0, max_time)
        try:
            wait_for_new_checkpoint(process, last, previous)
            time.sleep(pauses[round_])
            assert process.poll() is None, f"training finished before kill {round_ + 1} (pauses {pauses})"
        finally:
            process.send_signal(signal.SIGKILL)
            process.communicate()
        assert process.returncode == -signal.SIGKILL
        steps.append(check_run_dir(run))
        assert steps[-1] > steps[-2], f"no progress between kills: steps {steps}, pauses {pauses}"

    process = start(data, run, True, max_time)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    final = check_run_dir(run)
    assert final > steps[-1]
    assert load_checkpoint(last)[1]["training"]["state"]["finished"]
