"""Fault suite: SIGKILL at random moments of a short training run, each followed by --resume, against an uninterrupted
run of the same seed and step budget; the fuzzed-input properties with many examples; the run-directory faults.

usage: python bench/faults.py [--kills 20] [--steps 3000] [--fuzz-examples 1500] [--seed 1] [--no-write]

On CPU in fp32. Counts kills survived, kills inside a checkpoint write (a temporary left behind), corrupt checkpoints
(must be 0) and whether the final weights are bit-identical to the uninterrupted run's; fuzzed inputs given to the
readers and tokenizers, and uncaught exceptions (must be 0); the run-directory fault tests
(tests/training/test_rundir.py:
a second training, a killed holder of the lock, a run directory that is a file or read-only, a full disk, non-finite
losses). Prints a Markdown table and writes it, with the command, to the "Reliability" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_section

from seq2seq.errors import CheckpointError
from seq2seq.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.hidden_size=16", "model.embedding_size=8", "train.precision=fp32", "train.threads=1",
        "train.epochs=0", "train.max_time=0", "train.checkpoint_every=1", "train.eval_every=0", "data.batch_size=8",
        "data.src.kind=word", "data.tgt.kind=word"]


@dataclass
class KillCounts:
    """What the kill-and-resume part saw."""

    kills: int = 0
    inside_writes: int = 0
    corrupt: int = 0
    resumes: int = 0
    steps_at_kills: list[int] = field(default_factory=list)
    identical: bool = False
    seconds: float = 0.0


def write_data(folder: Path, seed: int) -> Path:
    rng = random.Random(seed)
    lines = [" ".join(rng.choice("abcdefgh") for _ in range(rng.randint(2, 7))) for _ in range(300)]
    data = folder / "copy.tsv"
    data.write_text("".join(f"{line}\t{line}\n" for line in lines), encoding="utf-8")
    return data


def train_command(data: Path, run: Path, steps: int, resume: bool) -> list[str]:
    return [sys.executable, "-m", "seq2seq.cli", "train", "--train", str(data), "--out", str(run), *TINY,
            f"train.max_steps={steps}", *(["--resume"] if resume else [])]


def run_to_end(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        sys.exit(f"training failed: {done.stderr[-2000:]}")


def model_weights(run: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_checkpoint(run / "last.safetensors")[0].items() if k.startswith("model.")}


def saved_step(run: Path) -> int:
    return int(load_checkpoint(run / "last.safetensors")[1]["training"]["state"]["step"])


def kill_once(command: list[str], run: Path, pause: float) -> bool:
    """Start training, wait for its first new checkpoint, let it run `pause` seconds more and SIGKILL it; False
    when it finished first."""
    last = run / "last.safetensors"
    before = last.stat().st_mtime_ns if last.is_file() else None
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    while process.poll() is None and (not last.is_file() or last.stat().st_mtime_ns == before):
        time.sleep(0.01)
    time.sleep(pause)
    finished = process.poll() is not None
    process.send_signal(signal.SIGKILL)
    process.communicate()
    return not finished


def corrupt_checkpoints(run: Path) -> int:
    """Checkpoints in the run directory that do not load."""
    count = 0
    for path in run.glob("*.safetensors"):
        try:
            load_checkpoint(path)
        except CheckpointError:
            count += 1
    return count


def kill_and_resume(folder: Path, kills: int, steps: int, seed: int) -> KillCounts:
    """The killed run, resumed after each kill, and the uninterrupted reference run."""
    data, run, reference = write_data(folder, seed), folder / "killed", folder / "reference"
    counts, rng, started = KillCounts(), random.Random(seed), time.monotonic()
    while counts.kills < kills:
        if not kill_once(train_command(data, run, steps, counts.kills > 0), run, rng.uniform(0.0, 1.0)):
            break
        counts.kills += 1
        counts.inside_writes += any(run.glob(".*.tmp"))
        counts.corrupt += corrupt_checkpoints(run)
        counts.steps_at_kills.append(saved_step(run))
        print(f"kill {counts.kills}: last checkpoint at step {counts.steps_at_kills[-1]}", flush=True)
    run_to_end(train_command(data, run, steps, True))
    counts.resumes = counts.kills
    run_to_end(train_command(data, reference, steps, False))
    got, expected = model_weights(run), model_weights(reference)
    counts.identical = got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)
    counts.seconds = time.monotonic() - started
    return counts


def run_tests(path: str, env: dict[str, str]) -> tuple[int, int, float]:
    """Run a test file with pytest in this process; returns (tests, failures, seconds)."""
    os.environ.update(env)
    started, tally = time.monotonic(), Tally()
    pytest.main(["-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT), str(ROOT / path)], plugins=[tally])
    return tally.passed + tally.failed, tally.failed, time.monotonic() - started


class Tally:
    """A pytest plugin counting passed and failed tests."""

    def __init__(self) -> None:
        self.passed = self.failed = 0

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.failed:
            self.passed += report.passed
            self.failed += report.failed


def fuzz(examples: int) -> tuple[int, int, float]:
    """Inputs given to the readers and tokenizers, failed properties (uncaught exceptions), seconds."""
    _, failed, seconds = run_tests("tests/data/test_fuzz.py", {"SEQ2SEQ_FUZZ_EXAMPLES": str(examples)})
    inputs = sys.modules["test_fuzz"].INPUTS["inputs"]
    return inputs, failed, seconds


def table(counts: KillCounts, fuzzed: tuple[int, int, float], faults: tuple[int, int, float], steps: int) -> str:
    """The Markdown rows of the section."""
    inputs, fuzz_failed, fuzz_seconds = fuzzed
    return "\n".join([
        "| fault | runs | result |", "|---|---|---|",
        f"| SIGKILL at random moments of a {steps}-step run, then --resume | {counts.kills} kills "
        f"({counts.inside_writes} inside a checkpoint write), {counts.resumes} resumes | corrupt checkpoints: "
        f"{counts.corrupt}; final weights bit-identical to an uninterrupted run: "
        f"{'yes' if counts.identical else 'NO'} ({counts.seconds:.0f} s) |",
        f"| fuzzed input (TSV, aligned, JSONL, labelled, chatterbot YAML, plain text; 6 tokenizers) | {inputs:,} "
        f"inputs | uncaught exceptions: {fuzz_failed} failed properties ({fuzz_seconds:.0f} s) |",
        f"| run directory: second training, killed lock holder, file, read-only, disk full (tmpfs), non-finite "
        f"loss | {faults[0]} tests | failed: {faults[1]} ({faults[2]:.0f} s) |",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=3000, help="the step budget of each run")
    parser.add_argument("--fuzz-examples", type=int, default=1500, help="examples per fuzzed property")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    fuzzed = fuzz(args.fuzz_examples)
    faults = run_tests("tests/training/test_rundir.py", {})
    with tempfile.TemporaryDirectory() as folder:
        counts = kill_and_resume(Path(folder), args.kills, args.steps, args.seed)
    body = table(counts, fuzzed, faults, args.steps)
    print(body)
    if not args.no_write:
        command = "python bench/faults.py " + shlex.join(sys.argv[1:])
        write_section("Reliability", f"`{command.strip()}` (CPU, fp32, a 16-unit model on a copy task; checkpoint "
                                     f"every step).\n\n{body}\n\nSteps saved at the kills: "
                                     f"{', '.join(map(str, counts.steps_at_kills))}.")


if __name__ == "__main__":
    main()
