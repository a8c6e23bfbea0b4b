"""eng-fra training speed of two versions of seq2seq side by side: this tree and an earlier commit, alternating.

Each round trains the peer setup (configs/eng-fra-peers.yaml) for --budget seconds with one version, then the
other, and reads steady target tokens/s, time to the first step and peak memory from each run. A refactoring
must not make training slower: the table gives each version's median and their ratio.

usage: python bench/commits.py --peers PEERS_DIR --work SCRATCH_DIR --old REV [--budget 120] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_metered, write_section
from translation import GIB, ROOT, prepare


def train(source: Path, data: Path, work: Path, budget: float, threads: int) -> dict[str, float]:
    """Train with the package under source/src for budget seconds; speed, first step and peak memory."""
    out = work / "runs" / source.name
    subprocess.run(["rm", "-rf", str(out)], check=True)
    command = [sys.executable, "-m", "seq2seq.cli", "train", "--config", str(ROOT / "configs" / "eng-fra-peers.yaml"),
               "--train", f"{data}/train.tok.en,{data}/train.tok.fr", "--dev", f"{data}/dev.tok.en,{data}/dev.tok.fr",
               "--out", str(out), "--max-time", str(budget), f"train.threads={threads}"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TQDM_DISABLE="1",
               PYTHONPATH=str(source / "src"))
    start, peak, _ = run_metered(command, work / f"{source.name}_train.log", env)
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [record for record in steps if record["event"] == "train"]
    first, last = steps[0], steps[-1]
    return {"steady": (last["tokens"] - first["tokens"]) / (last["time"] - first["time"]),
            "first_step": first["time"] - start, "peak": peak / GIB}


def checkout(revision: str, work: Path) -> Path:
    """A work tree of revision under work (made once)."""
    tree = work / f"tree-{revision}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), revision], check=True)
    return tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--old", required=True, help="the earlier commit to compare with")
    parser.add_argument("--budget", type=float, default=120.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = prepare(args.peers.resolve(), args.work)
    versions = {"this tree": ROOT, args.old: checkout(args.old, args.work)}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
    for _ in range(args.rounds):
        for name, source in versions.items():
            runs[name].append(train(source, data, args.work, args.budget, args.threads))
            print(name, runs[name][-1], flush=True)
    median = {name: {key: statistics.median(r[key] for r in results) for key in results[0]}
              for name, results in runs.items()}
    rows = [f"| {name} | {m['steady']:,.0f} | {m['first_step']:.1f} s | {m['peak']:.2f} GiB |"
            for name, m in median.items()]
    ratio = median["this tree"]["steady"] / median[args.old]["steady"]
    write_section("Training speed against an earlier commit", "\n".join([
        "| version | steady target tokens/s | first step | peak memory |", "|---|---|---|---|", *rows, "",
        f"This tree / {args.old}: **{ratio:.3f}x** steady tokens/s (medians of {args.rounds} alternating runs of "
        f"{args.budget:.0f} s each).", "",
        f"`python bench/commits.py --peers PEERS --work SCRATCH --old {args.old} --budget {args.budget:.0f} "
        f"--rounds {args.rounds}`"]))


if __name__ == "__main__":
    main()
