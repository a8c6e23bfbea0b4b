"""Processes against threads on CPU: G2P (configs/g2p.yaml, cmudict) trained for the same budget as 1 process x 2
threads and as 2 data-parallel processes x 1 thread (`--nproc 2`), one after the other; target tokens/s and dev WER.

Tokens/s is the steady rate from the first step to the last (setup and the final evaluation left out); the word
error rate is that of the best checkpoint on the dev split, greedy (100 - exact match, the run's own dev metric).

usage: python bench/scale.py --work SCRATCH_DIR [--budget 120] [--setups 0,1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path
from typing import NamedTuple

from common import run_metered, write_section
from g2p import train_command

from seq2seq.checkpoint import load_checkpoint


class Setup(NamedTuple):
    """One way to spend the 2 cores."""

    name: str
    processes: int
    threads: int
    batch_size: int  # per process


SETUPS = (Setup("1 process x 2 threads", 1, 2, 256),
          Setup("2 processes x 1 thread, batch 128 each (same effective batch)", 2, 1, 128),
          Setup("2 processes x 1 thread, batch 256 each (effective 512)", 2, 1, 256))


def train(setup: Setup, out: Path, budget: float) -> tuple[int, float]:
    """Train G2P the setup's way; returns peak memory (bytes, all processes) and wall seconds."""
    command = [*train_command(out, budget, setup.threads, seed=1), f"data.batch_size={setup.batch_size}"]
    if setup.processes > 1:
        command += ["--nproc", str(setup.processes)]
    env = dict(os.environ, OMP_NUM_THREADS=str(setup.threads), TQDM_DISABLE="1")
    _, peak, wall = run_metered(command, out.parent / f"{out.name}.log", env)
    return peak, wall


def results(run: Path) -> tuple[float, int, float]:
    """Target tokens per second from the first step to the last, the number of updates, the best dev WER."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    first = next(r for r in records if r["event"] == "train")
    last = load_checkpoint(run / "last.safetensors")[1]["training"]["state"]
    rate = (last["tokens"] - first["tokens"]) / max(last["elapsed"] - first["elapsed"], 1e-9)
    return rate, last["step"], 100 - max(r["exact_match"] for r in records if r["event"] == "eval")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of training per setup")
    parser.add_argument("--setups", default=",".join(map(str, range(len(SETUPS)))),
                        help="which setups to run (numbers into the SETUPS list, comma-separated)")
    args = parser.parse_args()
    chosen = [SETUPS[int(number)] for number in args.setups.split(",")]
    root = args.work.resolve() / "scale"
    subprocess.run(["rm", "-rf", str(root)], check=True)
    root.mkdir(parents=True)
    rows, baseline = [], 0.0
    for number, setup in enumerate(chosen):
        out = root / f"setup{number}"
        peak, wall = train(setup, out, args.budget)
        rate, updates, word_error_rate = results(out)
        baseline = baseline or rate
        rows.append(f"| {setup.name} | {rate:,.0f} | {rate / baseline:.2f}x | {updates:,} "
                    f"| {word_error_rate:.2f}% | {peak / 1024**3:.2f} GiB | {wall:.0f} s | {os.getloadavg()[1]:.1f} |")
        print(rows[-1], flush=True)
    body = ("| G2P, 2 cores | target tokens/s | speed-up | updates | dev WER (greedy) | peak memory | wall "
            "| load (5 min) |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
            f"Command: `python bench/scale.py --work SCRATCH --budget {args.budget:g} --setups {args.setups}` "
            "(configs/g2p.yaml, "
            f"--max-time {args.budget:g} for each setup, run one after the other; the linear schedule decays over "
            "the budget). Tokens/s runs from the first step to the last, setup left out; the budget includes each "
            "run's setup (data, and for 2 processes the launch and process group); wall includes the final dev "
            "decoding. Load: the machine's 5-minute load average at the end of the run (other work included).")
    print(body)
    write_section("Scale: processes against threads on CPU", body)


if __name__ == "__main__":
    main()
