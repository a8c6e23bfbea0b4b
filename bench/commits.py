"""Speed of two versions of seq2seq side by side: this tree and an earlier commit, alternating (a refactoring's
before and after, in one run).

Each round measures each version, in alternating order: training the peer setup (configs/eng-fra-peers.yaml) for
--budget seconds (steady target tokens/s, time to the first step, peak memory; left out with --decoding-only) and
the torch-free first translation (a fresh process: import seq2seq.onnx, load the model's export, translate one
sentence). Then, --rounds times, greedy and beam-5 decoding of the first 1,000 test sources at batch 64 and 128 and
of the first 100 at batch 1 (sentences/s; one model, trained once by this tree or given by --model, for both), the
versions taking turns for each measurement; whether they wrote the same outputs. The table gives each version's
medians and their ratio.

usage: python bench/commits.py --peers PEERS_DIR --work SCRATCH_DIR --old REV --change "WHAT" [--budget 120]
       [--rounds 3] [--model RUN_DIR] [--decoding-only]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_metered, write_section
from translation import GIB, ROOT, prepare

DECODE = """
import hashlib, json, sys, time, torch, seq2seq
torch.set_num_threads(int(sys.argv[3]))
model, sources = seq2seq.load(sys.argv[1], device="cpu"), open(sys.argv[2]).read().splitlines()[:1000]
model.translate(sources[:8])
model.translate(sources[:8], strategy="beam", beam_size=5)
knobs = {"greedy": {}, "beam": {"strategy": "beam", "beam_size": 5}}
for line in sys.stdin:
    name, batch = line.split()
    texts = sources[:100] if batch == "1" else sources
    started = time.perf_counter()
    outputs = model.translate(texts, batch_size=int(batch), **knobs[name])
    speed = len(texts) / (time.perf_counter() - started)
    print(json.dumps([speed, hashlib.sha256("\\n".join(outputs).encode()).hexdigest()]), flush=True)
"""
CELLS = [(name, batch) for name in ("greedy", "beam") for batch in (1, 64, 128)]
FIRST_TRANSLATION = ("import sys, seq2seq.onnx\n"
                     "print(seq2seq.onnx.load(sys.argv[1], threads=1).translate([sys.argv[2]]))")
ROWS = [("training: steady target tokens/s", "steady", "{:,.0f}"), ("training: first step", "first_step", "{:.2f} s"),
        ("training: peak memory", "peak", "{:.2f} GiB"),
        *((f"{name}, batch {batch}: sentences/s", f"{key}{batch}", "{:.1f}")
          for name, key in (("greedy", "greedy"), ("beam 5", "beam")) for batch in (1, 64, 128)),
        ("torch-free first translation", "first_translation", "{:.2f} s")]


def environment(source: Path, threads: int) -> dict[str, str]:
    """The package under source/src, on threads threads, without progress bars or deprecation warnings."""
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TQDM_DISABLE="1",
                PYTHONPATH=str(source / "src"), PYTHONWARNINGS="ignore::DeprecationWarning")


def train(source: Path, data: Path, out: Path, budget: float, threads: int) -> dict[str, float]:
    """Train with the package under source/src for budget seconds; speed, first step and peak memory."""
    subprocess.run(["rm", "-rf", str(out)], check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "seq2seq.cli", "train", "--config", str(ROOT / "configs" / "eng-fra-peers.yaml"),
               "--train", f"{data}/train.tok.en,{data}/train.tok.fr", "--dev", f"{data}/dev.tok.en,{data}/dev.tok.fr",
               "--out", str(out), "--max-time", str(budget), f"train.threads={threads}"]
    start, peak, _ = run_metered(command, out.parent / f"{out.name}_train.log", environment(source, threads))
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [record for record in steps if record["event"] == "train"]
    first, last = steps[0], steps[-1]
    return {"steady": (last["tokens"] - first["tokens"]) / (last["time"] - first["time"]),
            "first_step": first["time"] - start, "peak": peak / GIB}


def decoding_rounds(versions: dict[str, Path], model: Path, sources: Path, threads: int,
                    rounds: int) -> dict[str, list[dict[str, Any]]]:
    """Greedy and beam-5 sentences/s at batch 1, 64 and 128, and a digest of the outputs, by one decoding process
    per version that loads the model once; the versions take turns for every measurement, alternating which goes
    first, so that a slow spell of the machine falls on both."""
    workers = {name: subprocess.Popen([sys.executable, "-c", DECODE, str(model), str(sources), str(threads)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                      env=environment(source, threads)) for name, source in versions.items()}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in versions}
    for round_ in range(rounds):
        for name in versions:
            runs[name].append({"outputs": ""})
        for index, (strategy, batch) in enumerate(CELLS):
            for name, worker in list(workers.items())[:: 1 if (round_ + index) % 2 == 0 else -1]:
                assert worker.stdin is not None and worker.stdout is not None
                worker.stdin.write(f"{strategy} {batch}\n")
                worker.stdin.flush()
                answer = worker.stdout.readline()
                if not answer:
                    raise SystemExit(f"{name}: the decoding process stopped (exit status {worker.wait()})")
                speed, digest = json.loads(answer)
                runs[name][-1][f"{strategy}{batch}"] = speed
                runs[name][-1]["outputs"] += digest
        print("decoding", {name: {key: value for key, value in run[-1].items() if key != "outputs"}
                           for name, run in runs.items()}, flush=True)
    for name, worker in workers.items():
        worker.communicate()
        if worker.returncode:
            raise SystemExit(f"{name}: the decoding process failed (exit status {worker.returncode})")
    return runs


def first_translation(source: Path, export: Path, sentence: str) -> dict[str, float]:
    """Seconds from a fresh torch-free process's start to its first translation."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", FIRST_TRANSLATION, str(export), sentence], check=True, capture_output=True,
                   env=environment(source, 1))
    return {"first_translation": time.perf_counter() - started}


def checkout(revision: str, work: Path) -> Path:
    """A work tree of revision under work (made once)."""
    tree = work / f"tree-{revision}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), revision], check=True)
    return tree


def table(names: list[str], runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Medians of each version and this tree's ratio to the old one; whether every run wrote the same outputs."""
    median = {name: {key: statistics.median(run[key] for run in runs[name]) for key in runs[name][0]
                     if key != "outputs"} for name in names}
    lines = [f"| | {names[0]} | {names[1]} | ratio |", "|---|---|---|---|"]
    for label, key, form in (row for row in ROWS if row[1] in median[names[0]]):
        values = [median[name][key] for name in names]
        lines.append(f"| {label} | {form.format(values[0])} | {form.format(values[1])} | "
                     f"{values[0] / values[1]:.3f} |")
    same = len({run["outputs"] for name in names for run in runs[name]}) == 1
    return [*lines, "", f"Decoded outputs: {'identical' if same else 'DIFFERENT'} in every run of both versions."]


def shown_command(argv: list[str]) -> str:
    """The command line, with the scratch and model paths (of this machine) replaced by names."""
    hidden = {"--work": "SCRATCH", "--model": "RUN_DIR"}
    words = []
    for previous, word in itertools.pairwise(argv):
        flag, equals, _ = word.partition("=")
        words.append(hidden.get(previous) or (f"{flag}={hidden[flag]}" if equals and flag in hidden else word))
    return "python bench/commits.py " + " ".join(shlex.quote(word) for word in words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--old", required=True, help="the earlier commit to compare with")
    parser.add_argument("--change", required=True, help="what this tree changes, for the section's title (each "
                                                         "change keeps its own section)")
    parser.add_argument("--budget", type=float, default=120.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", type=Path, help="a trained run of the peer setup to decode (default: train one "
                                                    "for --budget seconds with this tree)")
    parser.add_argument("--decoding-only", action="store_true", help="leave out the training rounds")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = prepare(args.peers.resolve(), args.work)
    versions = {"this tree": ROOT, args.old: checkout(args.old, args.work)}
    model, export = args.model or args.work / "model", args.work / "export"
    if args.model is None:
        train(ROOT, data, model, args.budget, args.threads)  # decoded and exported for both versions
    subprocess.run([sys.executable, "-m", "seq2seq.cli", "export", "--model", str(model), "--out", str(export),
                    "--force"], check=True, capture_output=True, env=environment(ROOT, args.threads))
    sentence = (data / "test.tok.en").read_text(encoding="utf-8").splitlines()[0]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in versions}
    for round_ in range(args.rounds):
        for name, source in list(versions.items())[:: 1 if round_ % 2 == 0 else -1]:
            trained = {} if args.decoding_only else train(source, data, args.work / "runs" / source.name,
                                                          args.budget, args.threads)
            runs[name].append({**trained, **first_translation(source, export, sentence)})
            print(name, runs[name][-1], flush=True)
    decoded = decoding_rounds(versions, model, data / "test.tok.en", args.threads, args.rounds)
    for name in versions:
        for run, decoding in zip(runs[name], decoded[name], strict=True):
            run.update(decoding)
    lines = table(list(versions), runs)
    print("\n".join(lines))
    command = shown_command(sys.argv)
    training = "" if args.decoding_only else (
        f"; training runs of {args.budget:.0f} s (short runs spend a larger share in start-up and dev evaluation, so "
        "the rates sit below the 15-minute figures above: the ratio is what this table is for)")
    write_section(f"Speed of {args.change} (against {args.old})", "\n".join([
        *lines, "", f"Medians of {args.rounds} alternating rounds{training}.", "", f"`{command}`"]))


if __name__ == "__main__":
    main()
