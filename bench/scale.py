"""Processes against threads on CPU: a task trained for the same budget as 1 process x 2 threads and as 2
data-parallel processes x 1 thread (`--nproc 2`), one after the other; target tokens/s and quality.

G2P: configs/g2p.yaml on cmudict, quality the dev word error rate of the best checkpoint, greedy (100 - exact match,
the run's own dev metric). eng-fra: the peer setup (configs/eng-fra-peers.yaml on the peer kit's split, as
bench/translation.py), quality the test BLEU of the best checkpoint (detokenized, sacrebleu). Tokens/s is the steady
rate from the first step to the last (setup and the final evaluation left out).

usage: python bench/scale.py --work SCRATCH_DIR [--task g2p|eng-fra] [--budget 120] [--setups 0,1,2]
           [--peers PEERS_DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from common import run_metered, write_section
from g2p import train_command
from translation import prepare, score_ours

from seq2seq.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


class Task(NamedTuple):
    """What one setup trains, and how its quality is measured."""

    title: str
    batch_size: int  # of the single process
    quality: str  # the column header of the quality figure
    command: Callable[[Path, float, int], list[str]]  # (run directory, budget, threads) -> train command
    score: Callable[[Path, int], float]  # (run directory, threads) -> quality


class Setup(NamedTuple):
    """One way to spend the 2 cores."""

    processes: int
    threads: int
    batch_scale: int  # the per-process batch is the task's batch x batch_scale / processes

    def name(self, batch_size: int) -> str:
        if self.processes == 1:
            return f"1 process x {self.threads} threads"
        each = batch_size * self.batch_scale // self.processes
        effective = "same effective batch" if self.batch_scale == 1 else f"effective {each * self.processes}"
        return f"{self.processes} processes x {self.threads} thread, batch {each} each ({effective})"


SETUPS = (Setup(1, 2, 1), Setup(2, 1, 1), Setup(2, 1, 2))


def g2p_task(args: argparse.Namespace) -> Task:
    def word_error_rate(run: Path, threads: int) -> float:
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return 100 - max(r["exact_match"] for r in records if r["event"] == "eval")

    return Task("G2P", 256, "dev WER (greedy)", lambda out, budget, threads: train_command(out, budget, threads, 1),
                word_error_rate)


def eng_fra_task(args: argparse.Namespace) -> Task:
    data = prepare(args.peers.resolve(), args.work.resolve())

    def command(out: Path, budget: float, threads: int) -> list[str]:
        return [sys.executable, "-m", "seq2seq.cli", "train", "--config", str(ROOT / "configs" / "eng-fra-peers.yaml"),
                "--train", f"{data}/train.tok.en,{data}/train.tok.fr", "--dev", f"{data}/dev.tok.en,{data}/dev.tok.fr",
                "--out", str(out), "--max-time", str(budget), f"train.threads={threads}", "train.seed=1"]

    return Task("eng-fra", 64, "test BLEU", command, lambda run, threads: score_ours(run, data, threads)["bleu"])


TASKS = {"g2p": g2p_task, "eng-fra": eng_fra_task}


def train(task: Task, setup: Setup, out: Path, budget: float) -> tuple[int, float]:
    """Train the task the setup's way; returns peak memory (bytes, all processes) and wall seconds."""
    batch = task.batch_size * setup.batch_scale // setup.processes
    command = [*task.command(out, budget, setup.threads), f"data.batch_size={batch}"]
    if setup.processes > 1:
        command += ["--nproc", str(setup.processes)]
    env = dict(os.environ, OMP_NUM_THREADS=str(setup.threads), TQDM_DISABLE="1")
    _, peak, wall = run_metered(command, out.parent / f"{out.name}.log", env)
    return peak, wall


def steady_rate(run: Path) -> tuple[float, int]:
    """Target tokens per second from the first step to the last, and the number of updates."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    first = next(r for r in records if r["event"] == "train")
    last = load_checkpoint(run / "last.safetensors")[1]["training"]["state"]
    return (last["tokens"] - first["tokens"]) / max(last["elapsed"] - first["elapsed"], 1e-9), last["step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--task", choices=sorted(TASKS), default="g2p")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of training per setup")
    parser.add_argument("--setups", default=",".join(map(str, range(len(SETUPS)))),
                        help="which setups to run (numbers into the SETUPS list, comma-separated)")
    parser.add_argument("--peers", type=Path, default=ROOT.parent / "shared" / "peers",
                        help="the peer benchmark kit (eng-fra: its data preparation)")
    args = parser.parse_args()
    task = TASKS[args.task](args)
    chosen = [SETUPS[int(number)] for number in args.setups.split(",")]
    root = args.work.resolve() / f"scale-{args.task}"
    subprocess.run(["rm", "-rf", str(root)], check=True)
    root.mkdir(parents=True)
    rows, baseline = [], 0.0
    for number, setup in enumerate(chosen):
        out = root / f"setup{number}"
        peak, wall = train(task, setup, out, args.budget)
        rate, updates = steady_rate(out)
        quality = task.score(out, setup.processes * setup.threads)
        baseline = baseline or rate
        rows.append(f"| {setup.name(task.batch_size)} | {rate:,.0f} | {rate / baseline:.2f}x | {updates:,} "
                    f"| {quality:.2f} | {peak / 1024**3:.2f} GiB | {wall:.0f} s | {os.getloadavg()[1]:.1f} |")
        print(rows[-1], flush=True)
    body = (f"| {task.title}, 2 cores | target tokens/s | speed-up | updates | {task.quality} | peak memory | wall "
            "| load (5 min) |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
            f"Command: `python bench/scale.py --work SCRATCH --task {args.task} --budget {args.budget:g} "
            f"--setups {args.setups}` (--max-time {args.budget:g} for each setup, run one after the other). Tokens/s "
            "runs from the first step to the last, setup left out; the budget includes each run's setup (data, and "
            "for 2 processes the launch and process group); wall includes the final dev decoding. Load: the "
            "machine's 5-minute load average at the end of the run (other work included).")
    print(body)
    write_section(f"Scale: processes against threads on CPU, {task.title}", body)


if __name__ == "__main__":
    main()
