"""Design comparisons with `seq2seq compare`, and checkpoint averaging on the same runs: LSTM against GRU, and the
three attention scores (dot, general, bahdanau), on CMUdict G2P and Tatoeba eng-fra.

One `seq2seq compare` per task trains four variants one after another for the same budget: the config itself (LSTM
with general attention), then GRU, dot and bahdanau attention, each a single override of it. Every run keeps its
last 5 numbered checkpoints (train.keep_last=5, one every --every steps); afterwards `seq2seq average --last 5`
averages them and `seq2seq evaluate` scores the best single checkpoint and the average on the same held-out set.

G2P: configs/g2p.yaml on cmudict:train, dev loss on cmudict:dev, scored on cmudict:test. eng-fra:
configs/eng-fra-peers.yaml with its own punctuation splitting on the raw Tatoeba pairs (tatoeba/eng-fra.tsv shuffled
with seed 1: 2,000 dev, 2,000 test, the rest to train), scored on test.

usage: python bench/compare.py --work SCRATCH_DIR [--max-time 900] [--data DATA_DIR] [--tasks g2p,eng-fra]
           [--threads 2] [--every 500] [--reuse] [--note TEXT]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_metered, write_section

from seq2seq.config import load_config

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ["model.rnn=lstm", "model.rnn=gru", "model.attention=dot", "model.attention=bahdanau"]
KEEP = 5
TITLES = {"g2p": "Design comparison: CMUdict G2P", "eng-fra": "Design comparison: Tatoeba eng-fra"}


def g2p_data(data: Path, work: Path) -> tuple[list[str], str]:
    """compare's data and base config flags for G2P, and the scored data."""
    return (["--train", "cmudict:train", "--dev", "cmudict:dev", "--test", "cmudict:test", "--config",
             str(ROOT / "configs" / "g2p.yaml")], "cmudict:test")


def eng_fra_data(data: Path, work: Path) -> tuple[list[str], str]:
    """compare's data and base config flags for eng-fra (the split is written into work once), and the scored data."""
    folder = work / "eng-fra-data"
    if not (folder / "test.tsv").exists():
        lines = (data / "tatoeba" / "eng-fra.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
        random.Random(1).shuffle(lines)
        folder.mkdir(parents=True, exist_ok=True)
        for name, part in (("dev", lines[:2000]), ("test", lines[2000:4000]), ("train", lines[4000:])):
            (folder / f"{name}.tsv").write_text("".join(part), encoding="utf-8")
    return (["--train", str(folder / "train.tsv"), "--dev", str(folder / "dev.tsv"), "--test", str(folder / "test.tsv"),
             "--config", str(ROOT / "configs" / "eng-fra-peers.yaml"), "--set", "data.src.split_punctuation=true",
             "--set", "data.tgt.split_punctuation=true"], str(folder / "test.tsv"))


DATA = {"g2p": g2p_data, "eng-fra": eng_fra_data}


def environment(threads: int) -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TQDM_DISABLE="1")


def run_compare(task: str, flags: list[str], out: Path, args: argparse.Namespace) -> tuple[str, dict]:
    """The task's `seq2seq compare` (with --reuse, the one already in out when it finished); returns its Markdown
    table and its JSON summary."""
    if not (args.reuse and (out / "compare.json").exists()):
        shutil.rmtree(out, ignore_errors=True)
        command = [sys.executable, "-m", "seq2seq.cli", "compare", *flags, "--out", str(out), "--max-time",
                   str(args.max_time), "--set", f"train.threads={args.threads}", "--set", f"train.keep_last={KEEP}",
                   "--set", f"train.checkpoint_every={args.every}", *VARIANTS]
        _, _, wall = run_metered(command, out.parent / f"{out.name}.log", environment(args.threads))
        print(f"{task}: compare took {wall:.0f} s", file=sys.stderr)
    table = (out / "compare.md").read_text(encoding="utf-8").split("\n\n", 2)[2]
    return table, json.loads((out / "compare.json").read_text(encoding="utf-8"))


def evaluate(model: Path, scored: str, threads: int) -> dict[str, float]:
    """`seq2seq evaluate --json` of a run directory on the scored data."""
    command = [sys.executable, "-m", "seq2seq.cli", "evaluate", "--model", str(model), "--data", scored, "--json"]
    return json.loads(subprocess.run(command, env=environment(threads), check=True, stdout=subprocess.PIPE,
                                     text=True).stdout)


def averaging_table(summary: dict, scored: str, threads: int) -> str:
    """Per variant: the best single checkpoint against the mean of its last KEEP numbered checkpoints."""
    columns = summary["columns"]  # label -> evaluate key
    header = ["variant", "checkpoints averaged (updates)",
              *(f"{label}, {kind}" for label in columns for kind in ("best", "averaged"))]
    rows = [header, ["---"] * len(header)]
    for variant in summary["variants"]:
        run = Path(variant["directory"])
        steps = sorted(int(path.stem.split("-")[1]) for path in run.glob("checkpoint-*.safetensors"))[-KEEP:]
        averaged = run.parent / f"{run.name}-avg"
        shutil.rmtree(averaged, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "seq2seq.cli", "average", "--model", str(run), "--last",
                        str(len(steps)), "--out", str(averaged)], env=environment(threads), check=True)
        best, mean = evaluate(run, scored, threads), evaluate(averaged, scored, threads)
        rows.append([variant["name"], f"{len(steps)} ({', '.join(f'{step:,}' for step in steps)})",
                     *(f"{scores[key]:.2f}" for key in columns.values() for scores in (best, mean))])
    return "".join("| " + " | ".join(cells) + " |\n" for cells in rows)


def run_settings(summary: dict) -> tuple[int, int]:
    """The threads and the updates between numbered checkpoints that the compared runs trained with (with --reuse,
    those of the runs found, not of this command line)."""
    train = load_config(Path(summary["variants"][0]["directory"]) / "config.yaml").train
    return train.threads, train.checkpoint_every


def section(task: str, table: str, summary: dict, averaging: str, args: argparse.Namespace) -> str:
    budget = summary["max_time"]  # with --reuse, that of the runs found
    threads, every = run_settings(summary)
    body = (f"Each variant trained for {budget:g} s, one after another on the same cores, {threads} "
            f"thread(s); greedy scores on the {summary['scored_on']} set "
            f"({summary['variants'][0]['scored']:,} inputs), decoding speed on the same set. The config itself is "
            "LSTM with general attention: its row (`rnn=lstm`) is both the LSTM row of the LSTM/GRU question and the "
            "general row of the attention question; every other row changes one thing. Target tokens/s: the median "
            f"of the training log's windows.\n\n{table}\n"
            f"**Checkpoint averaging** on the same runs: the best single checkpoint (by the config's dev metric) "
            f"against the mean of the last {KEEP} numbered checkpoints (one every {every} updates and one at "
            f"the end; fewer where the run made fewer; `seq2seq average --last N`), both scored by `seq2seq "
            f"evaluate` on the {summary['scored_on']} set:\n\n{averaging}\n"
            f"Command: `python bench/compare.py --work SCRATCH --max-time {budget:g} --tasks {task} --threads "
            f"{threads} --every {every}`; the dev loss curves are in SCRATCH/{task}/curves.png.")
    return body + (f"\n\n{args.note}" if args.note else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder for the runs")
    parser.add_argument("--max-time", type=float, default=900.0, help="seconds of training per variant")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the data sets' folder")
    parser.add_argument("--tasks", default="g2p,eng-fra", help="g2p, eng-fra or both (comma-separated)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--every", type=int, default=500, help="updates between numbered checkpoints")
    parser.add_argument("--reuse", action="store_true", help="take the comparisons already finished in --work")
    parser.add_argument("--note", help="a paragraph added to the section (e.g. what else ran on the machine)")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    for task in args.tasks.split(","):
        flags, scored = DATA[task](args.data, work)
        table, summary = run_compare(task, flags, work / task, args)
        body = section(task, table, summary, averaging_table(summary, scored, args.threads), args)
        print(f"## {TITLES[task]}\n\n{body}")
        write_section(TITLES[task], body)


if __name__ == "__main__":
    main()
