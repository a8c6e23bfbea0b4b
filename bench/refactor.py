"""Before and after a refactoring, in one run: the same measurements on two commits, alternating, medians of N.

Training speed (eng-fra on the peer setup of bench/translation.py: steady target tokens/s and time to the first
step), beam-5 decoding at batch 64 and 128 (sentences/s on the test sources, one model for both commits) and the
torch-free first translation (a fresh process: import seq2seq.onnx, load an export, translate one sentence).
Each commit runs from a worktree of its own (`git worktree add`), through PYTHONPATH; a run alternates them.

usage: python bench/refactor.py --before REV [--after HEAD] --peers PEERS_DIR --work SCRATCH [--runs 3]
           [--train-time 60] [--title "Refactoring: ..."] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_section
from translation import prepare

ROOT = Path(__file__).resolve().parents[1]
THREADS = 2
DECODE = """
import sys, time, torch, seq2seq
torch.set_num_threads({threads})
model, sources = seq2seq.load(sys.argv[1], device="cpu"), open(sys.argv[2]).read().splitlines()[:{subset}]
model.translate(sources[:8], strategy="beam", beam_size=5)
for batch in (64, 128):
    started = time.perf_counter()
    model.translate(sources, strategy="beam", beam_size=5, batch_size=batch)
    print(len(sources) / (time.perf_counter() - started))
"""
FIRST_TRANSLATION = ("import sys, seq2seq.onnx\n"
                     "print(seq2seq.onnx.load(sys.argv[1], threads=1).translate([sys.argv[2]]))")


def checkout(revision: str, work: Path) -> Path:
    """A worktree of revision under work (made once)."""
    commit = subprocess.run(["git", "rev-parse", "--short", revision], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.strip()
    tree = work / f"tree-{commit}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT, check=True,
                       capture_output=True)
    return tree


def environment(tree: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(tree / "src"), OMP_NUM_THREADS=str(THREADS), TQDM_DISABLE="1",
                PYTHONWARNINGS="ignore::DeprecationWarning")


def train(tree: Path, data: Path, out: Path, seconds: float) -> dict[str, float]:
    """Steady target tokens/s and the time to the first step of a training of `seconds`."""
    subprocess.run(["rm", "-rf", str(out)], check=True)
    command = [sys.executable, "-m", "seq2seq.cli", "train", "--config", str(tree / "configs" / "eng-fra-peers.yaml"),
               "--train", f"{data}/train.tok.en,{data}/train.tok.fr", "--out", str(out), "--max-time", str(seconds),
               f"train.threads={THREADS}", "data.dev_size=0", "train.eval_every=0"]
    started = time.time()
    subprocess.run(command, env=environment(tree), check=True, capture_output=True, cwd=tree)
    steps = [record for line in (out / "metrics.jsonl").read_text().splitlines()
             if (record := json.loads(line))["event"] == "train"]
    if len(steps) < 2:
        sys.exit(f"{out}: fewer than two logged steps (every 50); give --train-time more seconds")
    first, last = steps[0], steps[-1]
    return {"steady_tokens_per_s": (last["tokens"] - first["tokens"]) / (last["time"] - first["time"]),
            "first_step_s": first["time"] - started}


def decode(tree: Path, model: Path, sources: Path, subset: int) -> dict[str, float]:
    """Beam-5 sentences/s at batch 64 and 128."""
    code = DECODE.format(threads=THREADS, subset=subset)
    done = subprocess.run([sys.executable, "-c", code, str(model), str(sources)], env=environment(tree), check=True,
                          capture_output=True, text=True)
    batch64, batch128 = map(float, done.stdout.split())
    return {"beam5_batch64": batch64, "beam5_batch128": batch128}


def first_translation(tree: Path, export: Path, sentence: str) -> dict[str, float]:
    """Seconds from a fresh torch-free process's start to its first translation."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", FIRST_TRANSLATION, str(export), sentence], env=environment(tree),
                   check=True, capture_output=True)
    return {"first_translation_s": time.perf_counter() - started}


ROWS = [("training: steady target tokens/s", "steady_tokens_per_s", "{:,.0f}"),
        ("training: time to the first step", "first_step_s", "{:.2f} s"),
        ("beam 5, batch 64: sentences/s", "beam5_batch64", "{:.1f}"),
        ("beam 5, batch 128: sentences/s", "beam5_batch128", "{:.1f}"),
        ("torch-free first translation", "first_translation_s", "{:.2f} s")]


def table(names: tuple[str, str], results: dict[str, list[dict[str, float]]], runs: int) -> str:
    lines = [f"| median of {runs} alternating runs | before ({names[0]}) | after ({names[1]}) | after / before |",
             "|---|---|---|---|"]
    for label, key, form in ROWS:
        before, after = (statistics.median(run[key] for run in results[name]) for name in names)
        lines.append(f"| {label} | {form.format(before)} | {form.format(after)} | {after / before:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the commit before the refactoring")
    parser.add_argument("--after", default="HEAD", help="the commit after it (default HEAD)")
    parser.add_argument("--peers", type=Path, required=True, help="the peer benchmark kit (shared/peers)")
    parser.add_argument("--work", type=Path, required=True, help="scratch directory")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--train-time", type=float, default=60.0, help="seconds of each training")
    parser.add_argument("--subset", type=int, default=1000, help="test sources decoded")
    parser.add_argument("--title", default="Refactoring: before and after")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = prepare(args.peers, args.work)
    trees = {revision: checkout(revision, args.work) for revision in (args.before, args.after)}
    model, export = args.work / "model", args.work / "export"
    after_env = environment(trees[args.after])
    train(trees[args.after], data, model, args.train_time)  # one model decodes and exports for both commits
    subprocess.run([sys.executable, "-m", "seq2seq.cli", "export", "--model", str(model), "--out", str(export),
                    "--force"], env=after_env, check=True, capture_output=True)
    sentence = (data / "test.tok.en").read_text(encoding="utf-8").splitlines()[0]
    results: dict[str, list[dict[str, float]]] = {revision: [] for revision in trees}
    for run in range(args.runs):
        for revision, tree in (trees.items() if run % 2 == 0 else reversed(trees.items())):
            found = {**train(tree, data, args.work / "speed", args.train_time),
                     **decode(tree, model, data / "test.tok.en", args.subset),
                     **first_translation(tree, export, sentence)}
            results[revision].append(found)
            print(revision, json.dumps(found), flush=True)
    report = table((args.before, args.after), results, args.runs)
    command = "python bench/refactor.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(report)
    if not args.no_write:
        write_section(args.title, f"`{command}`\n\n{report}")


if __name__ == "__main__":
    main()
