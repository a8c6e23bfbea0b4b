"""Train a character language model on a text for a wall-clock budget, side by side with the Keras seed design.

Ours: configs/charlm.yaml (characters embedded, 2-layer LSTM of 256 units, windows of 100 characters). The
reference: the peers' keras_charlm.py (50-character one-hot windows, 2 LSTM layers of 128 units, softmax), run with
a TensorFlow venv's python. Reports held-out bits per character, training characters predicted per second (whole
run, start-up included), time to the first step, peak memory, and our generation speed in characters per second.

With --against key=value ..., a second model of ours (the config with those overrides, e.g. model.arch=transformer)
takes the Keras design's place.

usage: python bench/charlm.py --text TEXT --work SCRATCH_DIR [--heldout TEXT] [--budget 900] [--threads 2]
           [--tf-python TFVENV/bin/python --keras-script PEERS/keras_charlm.py | --against key=value ...]
           [--together] [key=value ...]
Without --heldout, the last 10% of the lines of TEXT are held out (both systems train on the rest).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_metered, write_section

import seq2seq
from seq2seq.config import apply_overrides, load_config
from seq2seq.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3
KERAS_LINE = re.compile(r"first step (?P<first>[\d.]+) s; (?P<steps>\d+) steps, (?P<chars>\d+) predicted chars in "
                        r"(?P<seconds>\d+) s = (?P<rate>\d+) chars/s; held-out bpc (?P<bpc>[\d.]+)")


def describe(overrides: list[str]) -> str:
    """The model configs/charlm.yaml with these overrides is, in a few words (e.g. "2x256 LSTM")."""
    config = apply_overrides(load_config(ROOT / "configs" / "charlm.yaml"), overrides).model
    kind = "Transformer" if config.arch == "transformer" else config.rnn.upper()
    return f"{config.num_layers}x{config.hidden_size} {kind}"


def split_text(text: Path, heldout: Path | None, work: Path, fraction: float = 0.1) -> tuple[Path, Path]:
    """The training and held-out files: the given ones, or TEXT cut at a line boundary (last `fraction` held out)."""
    if heldout is not None:
        return text, heldout
    lines = text.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = round(len(lines) * (1 - fraction))
    train, held = work / "train.txt", work / "heldout.txt"
    train.write_text("".join(lines[:cut]), encoding="utf-8")
    held.write_text("".join(lines[cut:]), encoding="utf-8")
    return train, held


def train_ours(train: Path, work: Path, budget: float, threads: int, overrides: list[str],
               name: str = "charlm") -> dict[str, float]:
    out = work / "runs" / name
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "seq2seq.cli", "train", "--task", "lm", "--config",
               str(ROOT / "configs" / "charlm.yaml"), "--train", str(train), "--out", str(out), "--max-time",
               str(budget), f"train.threads={threads}", *overrides]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TQDM_DISABLE="1")
    start, peak, wall = run_metered(command, work / f"{name}_train.log", env)
    first = next(json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
                 if json.loads(line)["event"] == "train")
    state = load_checkpoint(out / "last.safetensors")[1]["training"]["state"]
    startup = first["time"] - first["elapsed"] - start  # process start -> training start
    return {"chars_per_s": state["tokens"] / (startup + state["elapsed"]), "first_step_s": first["time"] - start,
            "peak_gib": peak / GIB, "steps": state["step"], "wall_s": wall}


def score_ours(model_dir: Path, held: Path, threads: int, length: int = 2000) -> dict[str, float]:
    """Held-out bits per character, and characters generated per second by 1 and by 64 streams at once."""
    import torch

    torch.set_num_threads(threads)
    generator = seq2seq.load_generator(model_dir)
    scores = generator.evaluate(generator.read(held))
    rates = {}
    for streams in (1, 64):
        started = time.perf_counter()
        texts = generator.generate("", num=streams, max_length=length, seed=1)
        rates[f"generate_{streams}"] = sum(len(text) for text in texts) / (time.perf_counter() - started)
    return {"bpc": scores["bpc"], "heldout_chars": scores["characters"], **rates}


def train_keras(python: str, script: Path, train: Path, held: Path, work: Path, budget: float,
                threads: int) -> dict[str, float]:
    env = dict(os.environ, TRAIN=str(train), HELDOUT=str(held), BUDGET_S=str(budget), THREADS=str(threads),
               OMP_NUM_THREADS=str(threads), TF_CPP_MIN_LOG_LEVEL="2")
    log = work / "keras_charlm.log"
    _, peak, wall = run_metered([python, str(script)], log, env)
    found = KERAS_LINE.search(log.read_text(encoding="utf-8", errors="replace"))
    if found is None:
        sys.exit(f"no result line in {log}")
    return {"chars_per_s": float(found["rate"]), "first_step_s": float(found["first"]), "peak_gib": peak / GIB,
            "steps": float(found["steps"]), "wall_s": wall, "bpc": float(found["bpc"])}


def run_jobs(jobs: list[tuple[str, Callable[[], dict[str, float]]]], results: dict[str, dict[str, float]],
             together: bool) -> None:
    """Run the named jobs one after the other, or all at once in threads (each job is a subprocess)."""
    if not together:
        results.update((name, job()) for name, job in jobs)
        return
    threads = [threading.Thread(target=lambda name=name, job=job: results.update({name: job()})) for name, job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def table(columns: dict[str, dict[str, float]]) -> str:
    """One row per figure, one column per system (header: results)."""
    rows = [("held-out bits per character", "bpc", "{:.3f}"),
            ("training characters predicted/s (whole run)", "chars_per_s", "{:,.0f}"),
            ("time to first step", "first_step_s", "{:.1f} s"), ("updates", "steps", "{:,.0f}"),
            ("peak memory (process tree)", "peak_gib", "{:.2f} GiB"),
            ("generation characters/s, 1 stream", "generate_1", "{:,.0f}"),
            ("generation characters/s, 64 streams", "generate_64", "{:,.0f}")]
    lines = ["| | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for label, key, fmt in rows:
        cells = [fmt.format(results[key]) if key in results else "-" for results in columns.values()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, required=True, help="training text (UTF-8)")
    parser.add_argument("--heldout", type=Path, help="held-out text (default: the last 10%% of --text's lines)")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder for runs and logs")
    parser.add_argument("--budget", type=float, default=900.0, help="seconds of training per system")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tf-python", help="python of a venv with tensorflow-cpu + keras (the peers' TFVENV)")
    parser.add_argument("--keras-script", type=Path, help="the peers' keras_charlm.py (with --tf-python)")
    parser.add_argument("--together", action="store_true",
                        help="train both systems at the same time (give each --threads 1 on a 2-core machine)")
    parser.add_argument("--against", nargs="+", metavar="key=value",
                        help="a second model of ours: the config with these overrides (e.g. model.arch=transformer)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for our model")
    args = parser.parse_args()
    if bool(args.tf_python) != bool(args.keras_script):
        parser.error("--tf-python and --keras-script go together")
    if args.tf_python and args.against:
        parser.error("--against and --tf-python: one or the other")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    train, held = split_text(args.text.resolve(), args.heldout.resolve() if args.heldout else None, work)
    results: dict[str, dict[str, float]] = {}
    jobs = [("ours", lambda: train_ours(train, work, args.budget, args.threads, args.overrides))]
    if args.against:
        jobs.append(("against", lambda: train_ours(train, work, args.budget, args.threads,
                                                   [*args.overrides, *args.against], "against")))
    if args.tf_python:
        script = args.keras_script.resolve()
        jobs.append(("keras", lambda: train_keras(args.tf_python, script, train, held, work, args.budget,
                                                  args.threads)))
    run_jobs(jobs, results, args.together)
    ours, keras = results["ours"], results.get("keras")
    ours.update(score_ours(work / "runs" / "charlm", held, os.cpu_count() or 1))
    columns = {"seq2seq, " + describe(args.overrides): ours}
    if args.against:
        results["against"].update(score_ours(work / "runs" / "against", held, os.cpu_count() or 1))
        columns["seq2seq, " + describe([*args.overrides, *args.against])] = results["against"]
    if keras:
        columns["Keras seed design, 2x128 LSTM"] = keras
    body = table(columns)
    command = (f"python bench/charlm.py --text {args.text.name} --work SCRATCH --budget {args.budget:g} "
               f"--threads {args.threads}")
    command += f" --heldout {args.heldout.name}" if args.heldout else ""
    command += " --tf-python TFVENV/bin/python --keras-script PEERS/keras_charlm.py" if keras else ""
    command += " --together" if args.together else ""
    command += "".join(f" {item}" for item in args.overrides)
    command += f" --against {' '.join(args.against)}" if args.against else ""
    when = "trained at the same time" if args.together else "run one after the other"
    note = (f"Command: `{command}`. Text: `{args.text.name}`, {train.stat().st_size:,} bytes of training text and "
            f"{ours['heldout_chars']:,.0f} held-out characters; {args.budget:.0f} s of wall time from process start "
            f"per system, {args.threads} thread(s) each, {when}. Our held-out bpc counts every character "
            "of the held-out text, each predicted from the text before it (a Transformer's from at least half a "
            "window of it: it reads windows that overlap by half)"
            + ("; the Keras script scores its first 20,000 characters after a 50-character window, skipping "
               "characters unseen in training" if keras else "")
            + f". Generation, after training, on all {os.cpu_count()} cores: 2,000 characters per stream sampled "
            "at temperature 1 from an empty prompt.")
    print(body)
    title = "Text generation" if not args.against else f"Text generation: against {' '.join(args.against)}"
    write_section(title, body + "\n\n" + note)


if __name__ == "__main__":
    main()
