"""Design comparisons with `seq2seq compare`: LSTM against GRU, and the three attention scores (dot, general,
bahdanau), on CMUdict G2P and Tatoeba eng-fra; every variant trains for the same budget, one after another.

G2P: configs/g2p.yaml on the data folder's cmudict/train.tsv, scored on its dev.tsv (6,210 words; the test words are
held out of the folder). eng-fra: configs/eng-fra-peers.yaml with Moses tokenization of the raw Tatoeba pairs
(tatoeba/eng-fra.tsv, shuffled with seed 1: 2,000 dev, 2,000 test, the rest to train), scored on test.

usage: python bench/compare.py --work SCRATCH_DIR [--max-time 900] [--data DATA_DIR] [--tasks g2p,eng-fra]
           [--studies rnn,attention] [--threads 2] [--reuse] [--note TEXT]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_metered, write_section

ROOT = Path(__file__).resolve().parents[1]
STUDIES = {"rnn": ("LSTM or GRU", ["model.rnn=lstm", "model.rnn=gru"]),
           "attention": ("Attention score", ["model.attention=dot", "model.attention=general",
                                             "model.attention=bahdanau"])}
TITLES = {"g2p": "Design comparison: CMUdict G2P", "eng-fra": "Design comparison: Tatoeba eng-fra"}


def g2p_data(data: Path, work: Path) -> list[str]:
    """compare's data and base config flags for G2P."""
    return ["--train", str(data / "cmudict" / "train.tsv"), "--dev", str(data / "cmudict" / "dev.tsv"),
            "--config", str(ROOT / "configs" / "g2p.yaml")]


def eng_fra_data(data: Path, work: Path) -> list[str]:
    """compare's data and base config flags for eng-fra: the split is written into work once."""
    folder = work / "eng-fra-data"
    if not (folder / "test.tsv").exists():
        lines = (data / "tatoeba" / "eng-fra.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
        random.Random(1).shuffle(lines)
        folder.mkdir(parents=True, exist_ok=True)
        for name, part in (("dev", lines[:2000]), ("test", lines[2000:4000]), ("train", lines[4000:])):
            (folder / f"{name}.tsv").write_text("".join(part), encoding="utf-8")
    return ["--train", str(folder / "train.tsv"), "--dev", str(folder / "dev.tsv"), "--test", str(folder / "test.tsv"),
            "--config", str(ROOT / "configs" / "eng-fra-peers.yaml"), "--set", "data.src.split_punctuation=true",
            "--set", "data.tgt.split_punctuation=true"]


DATA = {"g2p": g2p_data, "eng-fra": eng_fra_data}


def run_study(task: str, study: str, flags: list[str], work: Path, args: argparse.Namespace) -> tuple[str, dict]:
    """One `seq2seq compare` (with --reuse, the one already in work when it finished); returns its Markdown table and
    its JSON summary."""
    out = work / f"{task}-{study}"
    if not (args.reuse and (out / "compare.json").exists()):
        shutil.rmtree(out, ignore_errors=True)
        command = [sys.executable, "-m", "seq2seq.cli", "compare", *flags, "--out", str(out), "--max-time",
                   str(args.max_time), "--set", f"train.threads={args.threads}", *STUDIES[study][1]]
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TQDM_DISABLE="1")
        _, _, wall = run_metered(command, work / f"{task}-{study}.log", env)
        print(f"{task} {study}: {wall:.0f} s", file=sys.stderr)
    table = (out / "compare.md").read_text(encoding="utf-8").split("\n\n", 2)[2]
    return table, json.loads((out / "compare.json").read_text(encoding="utf-8"))


def section(task: str, results: dict[str, tuple[str, dict]], args: argparse.Namespace) -> str:
    summary = next(iter(results.values()))[1]
    scored = summary["variants"][0]["scored"]
    budget = summary["max_time"]  # with --reuse, that of the runs found
    body = (f"Each variant trained for {budget:g} s, one after another on the same cores (side by side, the "
            f"runs would slow each other and distort their tokens/s), {args.threads} threads; greedy scores on the "
            f"{summary['scored_on']} set ({scored:,} inputs), decoding speed on the same set. Target tokens/s: the "
            "median of the training log's windows.\n\n")
    for study, (table, _) in results.items():
        body += f"**{STUDIES[study][0]}** (`{' '.join(STUDIES[study][1])}`):\n\n{table}\n"
    body += (f"Command: `python bench/compare.py --work SCRATCH --max-time {budget:g} --tasks {task} "
             f"--studies {','.join(results)} --threads {args.threads}` (each table is one `seq2seq compare`; "
             "the dev loss curves are in SCRATCH/TASK-STUDY/curves.png).")
    return body + (f"\n\n{args.note}" if args.note else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder for the runs")
    parser.add_argument("--max-time", type=float, default=900.0, help="seconds of training per variant")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the data sets' folder")
    parser.add_argument("--tasks", default="g2p,eng-fra", help="g2p, eng-fra or both (comma-separated)")
    parser.add_argument("--studies", default="rnn,attention", help="rnn, attention or both (comma-separated)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="take the studies already finished in --work as they are")
    parser.add_argument("--note", help="a paragraph added to the section (e.g. what else ran on the machine)")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    for task in args.tasks.split(","):
        flags = DATA[task](args.data, work)
        results = {study: run_study(task, study, flags, work, args) for study in args.studies.split(",")}
        body = section(task, results, args)
        print(f"## {TITLES[task]}\n\n{body}")
        write_section(TITLES[task], body)


if __name__ == "__main__":
    main()
