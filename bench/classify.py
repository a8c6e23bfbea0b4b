"""Text classification of Debian package descriptions (archive section, 58 labels): accuracy and macro-F1 on an
untuned split held out of the training texts, for the RNN classifier started from a language model of the training
texts (`--init`), the same classifier from random weights, and TF-IDF + LinearSVC baselines.

The untuned split is the 5% of training texts whose SHA-256 falls there (`untuned`); it is removed from training
(the language model's texts too) and only scored: checkpoints are chosen on the dev split. Stages on --threads
threads, data preparation included: a word language model (configs/classify-lm.yaml) on the training texts for
--lm-budget seconds, then configs/classify.yaml with --init from it for --budget seconds, then configs/classify.yaml
without --init for both budgets together (the same time in all). The baselines (scikit-learn, of the dev extra) are
word uni- and bigram TF-IDF (sublinear tf, min_df 2) with a linear SVM (C 0.5), without and with balanced class
weights.

With --defaults it measures instead what a newcomer gets with no setting: `--task lm --tokens word` on the training
texts for --lm-budget seconds, then `--task classify --init` from it for --budget seconds (by default 5 + 5
minutes), into a section of its own.

usage: python bench/classify.py [--data CLASSIFY_DIR] [--work SCRATCH_DIR] [--lm-budget 400] [--budget 500]
                                [--threads 2] [--defaults]
"""

from __future__ import annotations

import argparse
import hashlib
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
UNTUNED_PERCENT = 5


def untuned(text: str) -> bool:
    """Whether a training text belongs to the untuned split: its SHA-256 modulo 100 falls below UNTUNED_PERCENT."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % 100 < UNTUNED_PERCENT


def split(data: Path, work: Path) -> tuple[int, int]:
    """Write work/train.tsv (training texts less the untuned ones), work/untuned.tsv and work/texts.txt (the
    language model's: train.tsv's texts, one a line); returns the counts of train and untuned texts."""
    lines = (data / "train.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    held = [line for line in lines if untuned(line.split("\t", 1)[0])]
    kept = [line for line in lines if not untuned(line.split("\t", 1)[0])]
    (work / "train.tsv").write_text("".join(kept), encoding="utf-8")
    (work / "untuned.tsv").write_text("".join(held), encoding="utf-8")
    (work / "texts.txt").write_text("".join(line.split("\t", 1)[0] + "\n" for line in kept), encoding="utf-8")
    return len(kept), len(held)


def baselines(args: argparse.Namespace) -> dict[str, tuple[dict[str, float], float]]:
    """Untuned-split scores and training seconds of TF-IDF + LinearSVC, plain and with balanced class weights."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    train, held = read_labelled(args.work / "train.tsv"), read_labelled(args.work / "untuned.tsv")
    models = {"TF-IDF + LinearSVC": LinearSVC(C=0.5),
              "TF-IDF + LinearSVC, balanced class weights": LinearSVC(C=0.5, class_weight="balanced")}
    results = {}
    for name, linear in models.items():
        started = time.monotonic()
        pipeline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True), linear)
        pipeline.fit([p.src for p in train], [p.tgt for p in train])
        seconds = time.monotonic() - started
        results[name] = (classification_scores(list(pipeline.predict([p.src for p in held])),
                                               [p.tgt for p in held]), seconds)
        print(f"{name}: {results[name][0]['accuracy']:.2f}% accuracy, {results[name][0]['macro_f1']:.2f} macro-F1, "
              f"{seconds:.0f} s", flush=True)
    return results


def train(args: argparse.Namespace, name: str, flags: list[str],
          budget: float) -> tuple[int, float, tuple[float, float]]:
    """Run `seq2seq train` for budget seconds into work/name; returns its peak memory, wall seconds and the
    one-minute load average before and after (the cores may be shared)."""
    out = args.work / name
    subprocess.run(["rm", "-rf", str(out)], check=True)
    command = [sys.executable, "-m", "seq2seq.cli", "train", *flags, "--out", str(out), "--max-time",
               str(budget), f"train.threads={args.threads}"]
    before = os.getloadavg()[0]
    _, peak, wall = run_metered(command, args.work / f"{name}.log", dict(os.environ, TQDM_DISABLE="1"))
    print(f"{name}: {wall:.0f} s, peak RSS {peak / 2**30:.2f} GiB", flush=True)
    return peak, wall, (before, os.getloadavg()[0])


def classifier_flags(args: argparse.Namespace) -> list[str]:
    return ["--task", "classify", "--config", str(ROOT / "configs" / "classify.yaml"), "--train",
            str(args.work / "train.tsv"), "--dev", str(args.data / "dev.tsv")]


def evaluate(args: argparse.Namespace, name: str) -> dict[str, dict[str, object]]:
    """The best checkpoint's scores on the untuned and the dev split."""
    scores = {}
    for split_name, path in (("untuned", args.work / "untuned.tsv"), ("dev", args.data / "dev.tsv")):
        command = [sys.executable, "-m", "seq2seq.cli", "evaluate", "--model", str(args.work / name), "--data",
                   str(path), "--json"]
        scores[split_name] = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    return scores


def progress(args: argparse.Namespace, name: str) -> str:
    """What a run's budget bought: steps and epochs at its last evaluation."""
    records = [json.loads(line) for line in (args.work / name / "metrics.jsonl").read_text().splitlines()]
    last = [record for record in records if record["event"] == "eval"][-1]
    return f"{last['step']:,} steps, {last['epoch']} full epoch{'' if last['epoch'] == 1 else 's'}"


def report(args: argparse.Namespace, counts: tuple[int, int], runs: dict[str, tuple[int, float, tuple[float, float]]],
           scores: dict[str, dict[str, dict[str, object]]], baseline: dict[str, tuple[dict[str, float], float]]) -> str:
    names = {"init": f"RNN classifier, --init from the language model ({args.lm_budget:.0f} s + {args.budget:.0f} s)",
             "scratch": f"RNN classifier, random start ({args.lm_budget + args.budget:.0f} s)"}
    rows = [f"| {names[name]} | {scores[name]['untuned']['accuracy']:.2f} | {scores[name]['untuned']['macro_f1']:.2f}"
            f" | {scores[name]['dev']['accuracy']:.2f} | {scores[name]['dev']['macro_f1']:.2f} | {runs[name][1]:.0f} s,"
            f" peak RSS {runs[name][0] / 2**30:.2f} GiB, {progress(args, name)} |" for name in names]
    rows += [f"| {name} | {found['accuracy']:.2f} | {found['macro_f1']:.2f} | - | - | {seconds:.0f} s |"
             for name, (found, seconds) in baseline.items()]
    lm = runs["lm"]
    loads = ", ".join(f"{name} {runs[name][2][0]:.1f} -> {runs[name][2][1]:.1f}" for name in runs)
    return "\n".join([
        f"`python bench/classify.py --lm-budget {args.lm_budget:.0f} --budget {args.budget:.0f} --threads "
        f"{args.threads}`: {counts[0]:,} training "
        f"descriptions; the untuned split is the other {counts[1]:,} (5% by a hash of the text: never trained on, "
        "never used to choose anything); dev (2,587 descriptions) chooses the best checkpoint (`train.metric="
        "accuracy`). Accuracy and macro-F1 in percent.", "",
        "| model | untuned accuracy | untuned macro-F1 | dev accuracy | dev macro-F1 | training |",
        "|---|---|---|---|---|---|", *rows, "",
        f"The language model (configs/classify-lm.yaml, `--task lm` on the training descriptions) trained "
        f"{lm[1]:.0f} s ({progress(args, 'lm')}, peak RSS {lm[0] / 2**30:.2f} GiB) before the --init run; its time "
        "is not in the --init row's training column. Neither RNN row has a linear part (`model.bag_of_words` off). "
        f"One-minute load average before -> after each stage: {loads}.",
    ])


def defaults(args: argparse.Namespace, counts: tuple[int, int]) -> str:
    """The 5 + 5 minutes with the defaults: a word language model, then a classifier started from it."""
    runs = {"lm-defaults": train(args, "lm-defaults", ["--task", "lm", "--tokens", "word", "--train",
                                                       str(args.work / "texts.txt")], args.lm_budget)}
    runs["defaults"] = train(args, "defaults", ["--task", "classify", "--init", str(args.work / "lm-defaults"),
                                                "--train", str(args.work / "train.tsv"), "--dev",
                                                str(args.data / "dev.tsv")], args.budget)
    found = evaluate(args, "defaults")
    print(f"defaults: untuned {found['untuned']['accuracy']:.2f}% / {found['untuned']['macro_f1']:.2f}", flush=True)
    lm, classifier = runs["lm-defaults"], runs["defaults"]
    return "\n".join([
        f"`python bench/classify.py --defaults --lm-budget {args.lm_budget:.0f} --budget {args.budget:.0f} --threads "
        f"{args.threads}`: no config and no setting but the data, the budget and the threads: `seq2seq train --task lm "
        f"--tokens word` on the {counts[0]:,} training descriptions, then `seq2seq train --task classify --init` from "
        f"it (the encoder takes the language model's shape); scored on the untuned split ({counts[1]:,} descriptions) "
        "and on dev, which chooses the checkpoint.", "",
        "| stage | untuned accuracy | untuned macro-F1 | dev accuracy | dev macro-F1 | training |",
        "|---|---|---|---|---|---|",
        f"| language model, `--task lm --tokens word` | - | - | - | - | {lm[1]:.0f} s, peak RSS "
        f"{lm[0] / 2**30:.2f} GiB, {progress(args, 'lm-defaults')} |",
        f"| classifier, `--task classify --init` | {found['untuned']['accuracy']:.2f} | "
        f"{found['untuned']['macro_f1']:.2f} | {found['dev']['accuracy']:.2f} | {found['dev']['macro_f1']:.2f} | "
        f"{classifier[1]:.0f} s, peak RSS {classifier[0] / 2**30:.2f} GiB, {progress(args, 'defaults')} |",
    ])


def publish(args: argparse.Namespace, title: str, body: str) -> None:
    """The section printed (--no-write) or written to BENCHMARKS.md."""
    if args.no_write:
        print(body)
    else:
        write_section(title, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with train.tsv and dev.tsv")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-classify")
    parser.add_argument("--lm-budget", type=float, help="seconds of the language model (default 400; --defaults 300)")
    parser.add_argument("--budget", type=float, help="seconds of the classifier started from it (default 500; "
                        "--defaults 300; from scratch: both budgets)")
    parser.add_argument("--threads", type=int, default=2, help="train.threads (default 2)")
    parser.add_argument("--defaults", action="store_true", help="only the language model and the classifier with "
                        "no setting (the section 'Classification: 5 + 5 minutes with the defaults')")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing BENCHMARKS.md")
    args = parser.parse_args()
    lm_budget, budget = (300.0, 300.0) if args.defaults else (400.0, 500.0)
    args.lm_budget = lm_budget if args.lm_budget is None else args.lm_budget
    args.budget = budget if args.budget is None else args.budget
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    counts = split(args.data, args.work)
    if args.defaults:
        publish(args, "Classification: 5 + 5 minutes with the defaults", defaults(args, counts))
        return
    baseline = baselines(args)
    runs = {"lm": train(args, "lm", ["--task", "lm", "--config", str(ROOT / "configs" / "classify-lm.yaml"),
                                     "--train", str(args.work / "texts.txt")], args.lm_budget)}
    runs["init"] = train(args, "init", [*classifier_flags(args), "--init", str(args.work / "lm")], args.budget)
    runs["scratch"] = train(args, "scratch", classifier_flags(args), args.lm_budget + args.budget)
    scores = {name: evaluate(args, name) for name in ("init", "scratch")}
    for name, found in scores.items():
        print(f"{name}: untuned {found['untuned']['accuracy']:.2f}% / {found['untuned']['macro_f1']:.2f}", flush=True)
    publish(args, "Classification: Debian package sections", report(args, counts, runs, scores, baseline))


if __name__ == "__main__":
    main()
