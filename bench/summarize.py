"""Summarization of Debian package descriptions: ROUGE on the dev split after a time budget, with and without copy
attention, against the lead baseline.

Both models (configs/summarize.yaml, with model.copy=true and model.copy=false) train side by side for the same
budget, one thread each. The lead baseline outputs the first N words of each description, N the mean summary
length of the training data. ROUGE-1/2/L F-measures come from the rouge-score package (Porter stemming).

usage: python bench/summarize.py --data SUMMARIZE_DIR --work SCRATCH_DIR [--budget 900]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_metered, write_section

from seq2seq.data.pairs import read_tsv
from seq2seq.evaluation.metrics import group_references, rouge

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"copy": "model.copy=true", "no copy": "model.copy=false"}


def train(name: str, override: str, args: argparse.Namespace, results: dict[str, tuple[int, float]]) -> None:
    out = args.work / name.replace(" ", "_")
    subprocess.run(["rm", "-rf", str(out)], check=True)
    command = [sys.executable, "-m", "seq2seq.cli", "train", "--config", str(ROOT / "configs" / "summarize.yaml"),
               "--train", str(args.data / "train.tsv"), "--out", str(out), "--max-time", str(args.budget),
               "train.threads=1", override]
    env = dict(os.environ, OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    _, peak, wall = run_metered(command, args.work / f"{out.name}.log", env)
    results[name] = (peak, wall)


def evaluate(name: str, args: argparse.Namespace) -> dict[str, float]:
    out = args.work / name.replace(" ", "_")
    command = [sys.executable, "-m", "seq2seq.cli", "evaluate", "--model", str(out), "--data",
               str(args.data / "dev.tsv"), "--json", "--max-length", str(summary_limit(out))]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def summary_limit(out: Path) -> int:
    """The length limit `seq2seq summarize` uses: 99% of the training summaries fit."""
    from seq2seq.api import load_translator

    return load_translator(out, "cpu").summary_length()


def lead_baseline(args: argparse.Namespace) -> tuple[int, dict[str, float]]:
    """ROUGE of the first N words of each dev description, N the mean training summary length in words."""
    lengths = [len(pair.tgt.split()) for pair in read_tsv(args.data / "train.tsv")]
    words = round(sum(lengths) / len(lengths))
    dev = read_tsv(args.data / "dev.tsv")
    sources, references = group_references([p.src for p in dev], [p.tgt for p in dev])
    return words, rouge([" ".join(source.split()[:words]) for source in sources], references)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with train.tsv and dev.tsv")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--budget", type=float, default=900.0)
    args = parser.parse_args()
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    runs: dict[str, tuple[int, float]] = {}
    threads = [threading.Thread(target=train, args=(name, override, args, runs)) for name, override in VARIANTS.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    scores = {name: evaluate(name, args) for name in VARIANTS}
    words, lead = lead_baseline(args)
    rows = [f"| {name} | {s['rouge1']:.2f} | {s['rouge2']:.2f} | {s['rougeL']:.2f} | {s['perplexity']:.2f} "
            f"| {runs[name][1]:.0f} s, {runs[name][0] / 1024**3:.2f} GiB |" for name, s in scores.items()]
    body = (
        "| dev set (2,651 descriptions) | ROUGE-1 | ROUGE-2 | ROUGE-L | perplexity | training (wall, peak memory) |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
        f"| lead baseline (first {words} words) | {lead['rouge1']:.2f} | {lead['rouge2']:.2f} | {lead['rougeL']:.2f} "
        "| | |\n\n"
        f"Command: `python bench/summarize.py --data SUMMARIZE_DIR --work SCRATCH --budget {args.budget:g}` "
        "(configs/summarize.yaml; both models trained at the same time, one thread each; greedy decoding, outputs "
        "limited to the length 99% of the training summaries fit, as `seq2seq summarize` does)."
    )
    print(body)
    write_section("Summarization: Debian package descriptions", body)


if __name__ == "__main__":
    main()
