"""Corpora larger than memory: `seq2seq prepare` of N eng-fra pairs, then training from the prepared directory
against training from the same text.

The corpus is the 167,130 Tatoeba eng-fra pairs (shared data, tatoeba/eng-fra.tsv) repeated until N: copy k of a
pair (k = 0, 1, ...) has the number k appended to both sides (copy 0 is the pair itself), so that no line repeats and
the lengths and vocabulary stay those of real text. Settings: configs/eng-fra-peers.yaml with Moses tokens
(split_punctuation) on the raw text. Measured: prepare's wall time, pairs/s and peak memory (its worker processes
included), the prepared directory's size; then, for training from the directory and from the text file, over
the same number of steps: the time from the command's start to its first step and the peak memory (RSS of the
process tree, sampled every 0.5 s).

usage: python bench/prepare.py --work SCRATCH_DIR [--pairs 5000000] [--steps 20] [--workers 2] [--skip-text] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_metered, write_section

ROOT = Path(__file__).resolve().parents[1]
PAIRS_TSV = ROOT.parent / "shared" / "data" / "tatoeba" / "eng-fra.tsv"
CONFIG = ROOT / "configs" / "eng-fra-peers.yaml"
SETTINGS = ["data.src.split_punctuation=true", "data.tgt.split_punctuation=true"]
GIB = 1024**3


def build_corpus(source: Path, pairs: int, out: Path) -> None:
    """pairs lines: source's pairs repeated, copy k of each with ' k' appended to both sides (copy 0 unchanged)."""
    lines = [line.split("\t")[:2] for line in source.read_text(encoding="utf-8").splitlines() if line]
    with open(out, "w", encoding="utf-8") as handle:
        for start in range(0, pairs, len(lines)):
            copy = start // len(lines)
            suffix = f" {copy}" if copy else ""
            handle.writelines(f"{src}{suffix}\t{tgt}{suffix}\n" for src, tgt in lines[:pairs - start])


def prepared_corpus(root: Path, pairs: int, workers: int, reuse: bool) -> dict[str, float]:
    """Build the corpus and prepare it into root (prepare's figures kept in prepare.json), or with reuse take those
    of an earlier run."""
    figures = root / "prepare.json"
    if reuse and figures.is_file():
        return json.loads(figures.read_text())
    subprocess.run(["rm", "-rf", str(root)], check=True)
    root.mkdir(parents=True)
    build_corpus(PAIRS_TSV, pairs, root / "corpus.tsv")
    measured = prepare(root / "corpus.tsv", root / "prepared", workers)
    figures.write_text(json.dumps(measured))
    return measured


def environment() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="2", TQDM_DISABLE="1")


def prepare(corpus: Path, out: Path, workers: int) -> dict[str, float]:
    """Run seq2seq prepare; its wall time, peak memory and the size of what it wrote."""
    command = [sys.executable, "-m", "seq2seq.cli", "prepare", "--train", str(corpus), "--out", str(out),
               "--config", str(CONFIG), "--workers", str(workers), *SETTINGS]
    _, peak, wall = run_metered(command, out.parent / "prepare.log", environment())
    return {"seconds": wall, "peak_gib": peak / GIB, "disk_mib": sum(f.stat().st_size for f in out.iterdir()) / 2**20}


def train(data: Path, out: Path, steps: int) -> dict[str, float]:
    """Train for steps from data (a prepared directory or the text); time to the first step and peak memory."""
    subprocess.run(["rm", "-rf", str(out)], check=True)
    command = [sys.executable, "-m", "seq2seq.cli", "train", "--train", str(data), "--out", str(out), "--config",
               str(CONFIG), *SETTINGS, f"train.max_steps={steps}", "train.epochs=0"]
    start, peak, wall = run_metered(command, out.parent / f"{out.name}.log", environment())
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    first = next(record for record in records if record["event"] == "train")
    return {"first_step_s": first["time"] - start, "loop_s": first["time"] - start - first["elapsed"],
            "peak_gib": peak / GIB, "wall_s": wall,
            "steps": max(record["step"] for record in records), "load": os.getloadavg()[0]}


def report(pairs: int, workers: int, prepared: dict[str, float], runs: dict[str, dict[str, float]],
           steps: int) -> str:
    rows = [f"| {name} | {run['loop_s']:.1f} s | {run['first_step_s']:.1f} s | {run['peak_gib']:.2f} GiB | "
            f"{run['steps']:,} | "
            f"{run['wall_s']:.0f} s | {run['load']:.1f} |" for name, run in runs.items()]
    return (f"{pairs:,} eng-fra pairs (the Tatoeba pairs repeated, copy k with ' k' appended to both sides), "
            "configs/eng-fra-peers.yaml with Moses tokens on the raw text.\n\n"
            "| prepare | pairs/s | peak memory (workers included) | prepared directory |\n|---|---|---|---|\n"
            f"| {prepared['seconds']:.0f} s ({workers} workers) | {pairs / prepared['seconds']:,.0f} | "
            f"{prepared['peak_gib']:.2f} GiB | {prepared['disk_mib']:,.0f} MiB |\n\n"
            "| training from | time to the training loop | to the end of the first step | peak memory | steps | "
            "wall | load (1 min) at the end |\n|---|---|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n\n"
            f"Command: `python bench/prepare.py --work SCRATCH --pairs {pairs} --steps {steps} --workers {workers}"
            f"{'' if len(runs) > 1 else ' --skip-text'}`. "
            "Times count from the start of the command: to the training loop (interpreter, imports, data, model, "
            "before the epoch's batch order) and to the end of the first step (as logged in metrics.jsonl); peak "
            "memory is the RSS of the process tree sampled every 0.5 s (memory-mapped shard pages count in it).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--pairs", type=int, default=5_000_000)
    parser.add_argument("--steps", type=int, default=20, help="training steps of each run")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--skip-text", action="store_true", help="leave out training from the text")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the corpus, prepared directory and prepare's figures of an earlier run "
                             "(same --pairs)")
    args = parser.parse_args()
    root = args.work.resolve() / "prepare"
    prepared = prepared_corpus(root, args.pairs, args.workers, args.reuse)
    print(prepared, flush=True)
    corpus = root / "corpus.tsv"
    runs = {"the prepared directory": train(root / "prepared", root / "from-prepared", args.steps)}
    print(runs, flush=True)
    if not args.skip_text:
        runs["the text (tokenized at the start)"] = train(corpus, root / "from-text", args.steps)
        print(runs, flush=True)
    write_section(f"Prepared corpora (seq2seq prepare): {args.pairs:,} pairs",
                  report(args.pairs, args.workers, prepared, runs, args.steps))


if __name__ == "__main__":
    main()
