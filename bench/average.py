"""Checkpoint averaging: the best single checkpoint of a run against the mean of its last 5, on the test split.

Each task trains once for the budget with train.keep_last=5 (a numbered checkpoint every --every steps), then
`seq2seq average --last 5` writes the mean of the 5 newest, and both are scored on held-out data:
- g2p: configs/g2p.yaml on cmudict:train / dev, scored on cmudict:test (word error rate = 100 - exact match,
  phoneme error rate = WER over phonemes against the closest pronunciation; greedy);
- eng-fra: the peer setup of bench/translation.py (its data preparation and scoring: test BLEU / chrF, greedy).

usage: python bench/average.py --work SCRATCH_DIR [--budget 900] [--threads 2] [--every 500] [--tasks g2p eng-fra]
           [--peers PEERS_DIR]
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
from g2p import train_command
from translation import prepare, score_ours

ROOT = Path(__file__).resolve().parents[1]
KEEP = 5


def cli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "seq2seq.cli", *map(str, args)]


def environment(threads: int) -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TQDM_DISABLE="1")


def train_and_average(command: list[str], out: Path, every: int, threads: int) -> tuple[Path, float, int]:
    """Train with keep_last=5 (a numbered checkpoint every `every` steps) and average the last 5 into OUT-avg5;
    returns that directory, the training's wall time and its steps."""
    subprocess.run(["rm", "-rf", str(out), f"{out}-avg{KEEP}"], check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [*command, f"train.keep_last={KEEP}", f"train.checkpoint_every={every}"]
    _, _, wall = run_metered(command, out.parent / f"{out.name}_train.log", environment(threads))
    averaged = Path(f"{out}-avg{KEEP}")
    subprocess.run(cli("average", "--model", out, "--last", KEEP, "--out", averaged), check=True,
                   env=environment(threads))
    steps = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["step"]
    return averaged, wall, steps


def g2p_scores(model: Path, threads: int) -> dict[str, float]:
    command = cli("evaluate", "--model", model, "--data", "cmudict:test", "--json")
    scores = json.loads(subprocess.run(command, env=environment(threads), check=True, capture_output=True,
                                       text=True).stdout)
    return {"word error rate": 100 - scores["exact_match"], "phoneme error rate": scores["wer"]}


def run_g2p(work: Path, budget: float, threads: int, every: int) -> tuple[str, dict[str, float], dict[str, float]]:
    out = work / "g2p"
    averaged, wall, steps = train_and_average(train_command(out, budget, threads, seed=1), out, every, threads)
    label = f"G2P, cmudict:test ({wall:.0f} s, {steps:,} updates)"
    return label, g2p_scores(out, threads), g2p_scores(averaged, threads)


def run_eng_fra(work: Path, budget: float, threads: int, every: int, peers: Path
                ) -> tuple[str, dict[str, float], dict[str, float]]:
    data, out = prepare(peers, work), work / "eng-fra"
    command = cli("train", "--config", ROOT / "configs" / "eng-fra-peers.yaml", "--train",
                  f"{data}/train.tok.en,{data}/train.tok.fr", "--dev", f"{data}/dev.tok.en,{data}/dev.tok.fr",
                  "--out", out, "--max-time", budget, f"train.threads={threads}")
    averaged, wall, steps = train_and_average(command, out, every, threads)
    label = f"eng-fra, peer test split ({wall:.0f} s, {steps:,} updates)"

    def scores(model: Path) -> dict[str, float]:
        found = score_ours(model, data, threads)
        return {"BLEU": found["bleu"], "chrF": found["chrf"]}

    return label, scores(out), scores(averaged)


def table(results: list[tuple[str, dict[str, float], dict[str, float]]]) -> str:
    rows = ["| task | score | best single checkpoint | mean of the last 5 |", "|---|---|---|---|"]
    for label, best, averaged in results:
        rows += [f"| {label} | {name} | {best[name]:.2f} | {averaged[name]:.2f} |" for name in best]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--budget", type=float, default=900.0, help="seconds of training per task")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--every", type=int, default=500, help="steps between numbered checkpoints")
    parser.add_argument("--tasks", nargs="+", choices=("g2p", "eng-fra"), default=["g2p", "eng-fra"])
    parser.add_argument("--peers", type=Path, default=ROOT.parent / "shared" / "peers",
                        help="the peer kit (its prepare_data.py makes the eng-fra split)")
    args = parser.parse_args()
    work = args.work.resolve() / "average"
    results = []
    if "g2p" in args.tasks:
        results.append(run_g2p(work, args.budget, args.threads, args.every))
    if "eng-fra" in args.tasks:
        results.append(run_eng_fra(work, args.budget, args.threads, args.every, args.peers.resolve()))
    body = (f"{table(results)}\n\nCommand: `python bench/average.py --work SCRATCH --budget {args.budget:g} --threads "
            f"{args.threads} --every {args.every} --tasks {' '.join(args.tasks)}`: one training per task with "
            f"train.keep_last={KEEP} and a numbered checkpoint every {args.every} steps (and at each of the config's "
            "dev evaluations, every 2,000 steps and at the end); the best single checkpoint is the run's "
            "best.safetensors (by the config's dev metric); greedy decoding.")
    print(body)
    write_section("Checkpoint averaging: best single checkpoint against the mean of the last 5", body)


if __name__ == "__main__":
    main()
