"""Dynamic evaluation of a trained language model against its static evaluation, on the same held-out text.

The held-out text, read into entries as the model was trained, is cut into two halves; each is scored statically
and dynamically with the adaptation settings (rule, step size, decay) chosen from a small grid on the start of the
other half (--tune-chars), and the whole text's figures pool the two. Reports bits per character
and characters scored per second.

usage: python bench/dynamic_eval.py --model RUN_DIR --heldout TEXT [--threads 2] [--segment 20] [--tune-chars N]
The run is a language model trained by bench/charlm.py (runs/charlm of its --work folder, whose heldout.txt is the
held-out text).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_section

import seq2seq
from seq2seq.evaluation.adaptation import Adaptation

GRID = {"rms": {"lr": (5e-4, 1e-3), "decay": (1e-3, 3e-3)}, "sgd": {"lr": (0.3,), "decay": (0.0,)}}


def halves(entries: list[str]) -> tuple[list[str], list[str]]:
    """The entries cut at the middle one."""
    middle = len(entries) // 2
    return entries[:middle], entries[middle:]


def first_chars(entries: list[str], count: int) -> list[str]:
    """The leading entries that hold at most count characters (at least one entry)."""
    ends = list(itertools.accumulate(len(entry) + 1 for entry in entries))
    return entries[:max(1, sum(end <= count for end in ends))]


class Scored(NamedTuple):
    """Bits per character, characters scored and characters per second."""

    bpc: float
    characters: float
    rate: float


def scored(generator: object, entries: list[str], adaptation: Adaptation | None) -> Scored:
    """How the generator scores the entries (read as bench/charlm.py scores them), static without an adaptation."""
    started = time.perf_counter()
    scores = generator.evaluate(entries, adaptation)  # type: ignore[attr-defined]
    return Scored(scores["bpc"], scores["characters"], scores["characters"] / (time.perf_counter() - started))


def tune(generator: object, text: list[str], segment: int) -> tuple[Adaptation, list[tuple[Adaptation, float]]]:
    """The settings of GRID with the lowest bpc on text, and the bpc of each tried."""
    tried = []
    for rule, grid in GRID.items():
        for lr, decay in itertools.product(grid["lr"], grid["decay"]):
            adaptation = Adaptation(lr=lr, decay=decay, segment=segment, rule=rule)
            tried.append((adaptation, scored(generator, text, adaptation).bpc))
            print(f"tuning: {rule} lr={lr:g} decay={decay:g}: {tried[-1][1]:.4f} bpc", flush=True)
    return min(tried, key=lambda pair: pair[1])[0], tried


def pooled(parts: list[Scored]) -> Scored:
    """The scores of the parts' text together: bits and seconds added up."""
    characters = sum(part.characters for part in parts)
    bits = sum(part.bpc * part.characters for part in parts)
    seconds = sum(part.characters / part.rate for part in parts)
    return Scored(bits / characters, characters, characters / seconds)


def row(label: str, static: Scored, dynamic: Scored) -> str:
    return (f"| {label} | {static.bpc:.3f} | {dynamic.bpc:.3f} | {dynamic.bpc - static.bpc:+.3f} | "
            f"{static.rate:,.0f} | {dynamic.rate:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="run directory of a language model")
    parser.add_argument("--heldout", type=Path, required=True, help="held-out text (UTF-8)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--segment", type=int, default=Adaptation.segment, help="tokens per update")
    parser.add_argument("--tune-chars", type=int, default=50_000, help="characters of the tuning half tuned on")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    generator = seq2seq.load_generator(args.model)
    first, second = halves(generator.read(args.heldout))
    folds = (("first", first, "second", second), ("second", second, "first", first))
    rows, tuning, results = [], [], []
    for tuned_name, tuned_on, reported_name, reported in folds:
        best, tried = tune(generator, first_chars(tuned_on, args.tune_chars), args.segment)
        results.append((scored(generator, reported, None), scored(generator, reported, best)))
        rows.append(row(f"{reported_name} half, settings from the {tuned_name}", *results[-1]))
        tuning += [f"| {tuned_name} half | {a.rule} | {a.lr:g} | {a.decay:g} | {bpc:.3f} |"
                   + (" chosen |" if a == best else " |") for a, bpc in tried]
    rows.append(row("**whole held-out text**, each half with the other's settings",
                    pooled([static for static, _ in results]), pooled([dynamic for _, dynamic in results])))
    body = "\n".join(["| held-out text | static bpc | dynamic bpc | change | static chars/s | dynamic chars/s |",
                      "|---|---|---|---|---|---|", *rows])
    note = (f"Command: `python bench/dynamic_eval.py --model RUN --heldout {args.heldout.name} --threads "
            f"{args.threads} --segment {args.segment} --tune-chars {args.tune_chars}` on a model of "
            f"`bench/charlm.py` ({sum(p.numel() for p in generator.model.parameters()):,} parameters). The "
            "held-out text is read into entries as the model was trained (`data.entries`) and cut into two halves of "
            "its entries "
            f"({sum(map(len, first)):,} and {sum(map(len, second)):,} characters); each half is scored with the "
            f"settings chosen on the first {args.tune_chars:,} characters of the other, so no figure above is tuned "
            "on the text it scores. Static evaluation reads the text in `data.batch_size` parallel parts, dynamic "
            f"evaluation as one part in order, one update per segment; {args.threads} thread(s), "
            f"{os.cpu_count()} cores.\n\nTuning (bpc on the tuning characters of each half):\n\n"
            "| tuned on | rule | lr | decay | bpc | |\n|---|---|---|---|---|---|\n" + "\n".join(tuning))
    print(body)
    write_section("Text generation: dynamic evaluation", body + "\n\n" + note)


if __name__ == "__main__":
    main()
