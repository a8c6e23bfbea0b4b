"""The Transformer beside the LSTM: each task's config (LSTM with general attention) against the same config with
`model.arch=transformer` alone, trained one after the other for the same budget by `seq2seq compare`, scored on
the held-out test set (greedy).

The data are bench/compare.py's: G2P on cmudict:train / dev / test with configs/g2p.yaml; eng-fra on Tatoeba
(shuffled with seed 1: 2,000 dev, 2,000 test, the rest to train), words split by the config's tokenizer rules.

usage: python bench/transformer.py --work SCRATCH_DIR [--max-time 150] [--tasks eng-fra,g2p] [--threads 2]
           [--note TEXT]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_metered, write_section
from compare import DATA, ROOT, environment

VARIANTS = ["model.rnn=lstm", "model.arch=transformer"]
NAMES = {"g2p": "CMUdict G2P", "eng-fra": "Tatoeba eng-fra"}


def compare(task: str, work: Path, args: argparse.Namespace) -> str:
    """Run the task's comparison into work; its Markdown table."""
    flags, _ = DATA[task](args.data, work)
    out = work / f"{task}-{args.max_time:g}s"
    command = [sys.executable, "-m", "seq2seq.cli", "compare", *flags, "--out", str(out), "--max-time",
               str(args.max_time), "--set", f"train.threads={args.threads}", *VARIANTS]
    _, _, wall = run_metered(command, work / f"{out.name}.log", environment(args.threads))
    print(f"{task}: compare took {wall:.0f} s", file=sys.stderr)
    return (out / "compare.md").read_text(encoding="utf-8").split("\n\n", 2)[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder for the runs")
    parser.add_argument("--max-time", type=float, default=150.0, help="seconds of training per variant")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the data sets' folder")
    parser.add_argument("--tasks", default="eng-fra,g2p", help="eng-fra, g2p or both (comma-separated)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--note", help="a paragraph added to the section (e.g. what else ran on the machine)")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    for task in args.tasks.split(","):
        table = compare(task, work, args)
        title = f"Transformer against LSTM: {NAMES[task]}, {args.max_time:g} s"
        body = (f"Each design trained for {args.max_time:g} s with its defaults (precision auto), one after the "
                f"other on the same cores, {args.threads} thread(s); greedy scores on the test set. The LSTM row is "
                f"the config itself; the transformer row adds `model.arch=transformer` and nothing else (its "
                f"defaults: pre-norm, 4 heads, feed-forward 1024, sinusoidal positions, 400 warm-up updates, the "
                f"config's hidden size and layers).\n\n{table}\n"
                f"Command: `python bench/transformer.py --work SCRATCH --max-time {args.max_time:g} --tasks {task} "
                f"--threads {args.threads}`.")
        body += f"\n\n{args.note}" if args.note else ""
        print(f"## {title}\n\n{body}")
        write_section(title, body)


if __name__ == "__main__":
    main()
