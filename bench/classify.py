"""Text classification of Debian package descriptions (archive section, 58 labels): accuracy and macro-F1 on the
dev split after a time budget, beside a TF-IDF + linear model baseline trained on the same split in the same run.

The RNN classifier (configs/classify.yaml) trains for --budget seconds on all the machine's threads, data
preparation included; the baselines (scikit-learn, a benchmark-only dependency) are word uni- and bigram TF-IDF
(sublinear tf, min_df 2) with a linear SVM (C 0.5), without and with balanced class weights, timed the same way.

usage: python bench/classify.py [--data CLASSIFY_DIR] [--work SCRATCH_DIR] [--budget 900] [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_metered, write_section

from seq2seq.data.labels import read_labelled
from seq2seq.evaluation.metrics import classification_scores

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "classify"


def baselines(data: Path) -> dict[str, tuple[dict[str, float], float]]:
    """Dev scores and training seconds of TF-IDF + LinearSVC, plain and with balanced class weights."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    train, dev = read_labelled(data / "train.tsv"), read_labelled(data / "dev.tsv")
    models = {"TF-IDF + LinearSVC": LinearSVC(C=0.5),
              "TF-IDF + LinearSVC, balanced class weights": LinearSVC(C=0.5, class_weight="balanced")}
    results = {}
    for name, linear in models.items():
        started = time.monotonic()
        pipeline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True), linear)
        pipeline.fit([p.src for p in train], [p.tgt for p in train])
        seconds = time.monotonic() - started
        predictions = list(pipeline.predict([p.src for p in dev]))
        results[name] = (classification_scores(predictions, [p.tgt for p in dev]), seconds)
        print(f"{name}: {results[name][0]['accuracy']:.2f}% accuracy, {results[name][0]['macro_f1']:.2f} macro-F1, "
              f"{seconds:.0f} s", flush=True)
    return results


def train_rnn(args: argparse.Namespace) -> tuple[int, float]:
    """Train the RNN classifier for the budget; returns its peak memory and wall seconds. The one-minute load
    average before and after goes into args.load (the two cores are shared)."""
    out = args.work / "rnn"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    command = [sys.executable, "-m", "seq2seq.cli", "train", "--task", "classify", "--config",
               str(ROOT / "configs" / "classify.yaml"), "--train", str(args.data / "train.tsv"), "--dev",
               str(args.data / "dev.tsv"), "--out", str(out), "--max-time", str(args.budget), *args.overrides]
    before = os.getloadavg()[0]
    _, peak, wall = run_metered(command, args.work / "rnn.log", dict(os.environ, TQDM_DISABLE="1"))
    args.load = (before, os.getloadavg()[0])
    return peak, wall


def training_summary(args: argparse.Namespace) -> str:
    """What the RNN's budget bought: steps, epochs, the rate of training proper and the load on the machine."""
    records = [json.loads(line) for line in (args.work / "rnn" / "metrics.jsonl").read_text().splitlines()]
    trains = [record for record in records if record["event"] == "train"]
    last = [record for record in records if record["event"] == "eval"][-1]
    rate = (trains[-1]["tokens"] - trains[0]["tokens"]) / max(trains[-1]["elapsed"] - trains[0]["elapsed"], 1e-9)
    return (f"The RNN trained {last['step']:,} steps ({last['epoch']} full epochs, {rate:.0f} texts/s with the dev "
            f"evaluations, {last['elapsed']:.0f} s of the budget after data preparation); the one-minute load average "
            f"was {args.load[0]:.1f} before it and {args.load[1]:.1f} after.")


def evaluate_rnn(args: argparse.Namespace) -> tuple[dict[str, object], float]:
    """The best checkpoint's dev scores, and the seconds `seq2seq evaluate` took (loading and tokenizing included)."""
    started = time.monotonic()
    command = [sys.executable, "-m", "seq2seq.cli", "evaluate", "--model", str(args.work / "rnn"), "--data",
               str(args.data / "dev.tsv"), "--json", "--confusion", str(args.work / "confusion.png")]
    scores = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    return scores, time.monotonic() - started


def losses_to_baseline(rnn: dict[str, dict[str, float]], baseline: dict[str, dict[str, float]], count: int = 8
                       ) -> list[str]:
    """Table rows of the labels (with at least 10 dev texts) where the RNN's F1 falls furthest below the
    baseline's."""
    gaps = sorted((rnn.get(label, {"f1": 0.0})["f1"] - found["f1"], label) for label, found in baseline.items()
                  if found["support"] >= 10)
    return [f"| {label} | {baseline[label]['support']} | {rnn.get(label, {'f1': 0.0})['f1']:.1f} | "
            f"{baseline[label]['f1']:.1f} |" for _, label in gaps[:count]]


def report(args: argparse.Namespace, rnn: dict[str, object], seconds: tuple[int, float, float],
           baseline: dict[str, tuple[dict[str, float], float]]) -> str:
    peak, wall, evaluation = seconds
    rows = [f"| RNN classifier (configs/classify.yaml), {args.budget:.0f} s budget | {rnn['accuracy']:.2f} | "
            f"{rnn['macro_f1']:.2f} | {wall:.0f} s, peak RSS {peak / 2**30:.2f} GiB |"]
    rows += [f"| {name} | {scores['accuracy']:.2f} | {scores['macro_f1']:.2f} | {train_seconds:.0f} s |"
             for name, (scores, train_seconds) in baseline.items()]
    best = max(baseline, key=lambda name: baseline[name][0]["macro_f1"])
    overrides = " ".join(args.overrides)
    return "\n".join([
        f"`python bench/classify.py --budget {args.budget:.0f}{' ' + overrides if overrides else ''}`: "
        "`configs/classify.yaml` on the 48,151 training descriptions, scored on the 2,587 dev descriptions (56 of "
        "the 58 labels occur there). Accuracy and macro-F1 in percent; the RNN's best dev checkpoint "
        f"(`train.metric=accuracy`). `seq2seq evaluate` of the dev split took {evaluation:.0f} s.", "",
        "| model | accuracy | macro-F1 | training |", "|---|---|---|---|", *rows, "", training_summary(args), "",
        f"Labels (10 or more dev texts) where the RNN's F1 falls furthest below that of {best}:", "",
        "| label | dev texts | RNN F1 | baseline F1 |", "|---|---|---|---|",
        *losses_to_baseline(rnn["per_class"], baseline[best][0]["per_class"]),  # type: ignore[arg-type]
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with train.tsv and dev.tsv")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-classify")
    parser.add_argument("--budget", type=float, default=900.0, help="seconds of RNN training (default 900)")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing BENCHMARKS.md")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for the RNN")
    args = parser.parse_args()
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    baseline = baselines(args.data)
    peak, wall = train_rnn(args)
    rnn, evaluation = evaluate_rnn(args)
    print(f"RNN: {rnn['accuracy']:.2f}% accuracy, {rnn['macro_f1']:.2f} macro-F1", flush=True)
    body = report(args, rnn, (peak, wall, evaluation), baseline)
    if args.no_write:
        print(body)
    else:
        write_section("Classification: Debian package sections", body)


if __name__ == "__main__":
    main()
