"""Dynamic evaluation of a trained language model against its static evaluation, on the same held-out text.

The held-out text is cut at a line boundary into a tuning half and a report half: the adaptation settings (rule,
step size, decay) are chosen from a small grid on the start of the tuning half (--tune-chars), then the report half
is scored statically and dynamically with them. Reports bits per character and characters scored per second.

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_section

import seq2seq
from seq2seq.evaluation.adaptation import Adaptation

GRID = {"rms": {"lr": (5e-4, 1e-3), "decay": (1e-3, 3e-3)}, "sgd": {"lr": (0.3,), "decay": (0.0,)}}


def halves(path: Path) -> tuple[str, str]:
    """The text cut at the line boundary nearest its middle."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    middle = len(lines) // 2
    return "".join(lines[:middle]), "".join(lines[middle:])


def scored(generator: object, text: str, adaptation: Adaptation | None) -> tuple[float, float]:
    """Bits per character of text (one entry, as bench/charlm.py trains and scores) and characters per second."""
    started = time.perf_counter()
    scores = generator.evaluate([text], adaptation)  # type: ignore[attr-defined]
    return scores["bpc"], scores["characters"] / (time.perf_counter() - started)


def tune(generator: object, text: str, segment: int) -> tuple[Adaptation, list[str]]:
    """The settings of GRID with the lowest bpc on text, and a table row for each tried."""
    tried = []
    for rule, grid in GRID.items():
        for lr, decay in itertools.product(grid["lr"], grid["decay"]):
            adaptation = Adaptation(lr=lr, decay=decay, segment=segment, rule=rule)
            tried.append((scored(generator, text, adaptation)[0], adaptation))
            print(f"tuning: {rule} lr={lr:g} decay={decay:g}: {tried[-1][0]:.4f} bpc", flush=True)
    rows = [f"| {a.rule} | {a.lr:g} | {a.decay:g} | {bpc:.3f} |" for bpc, a in tried]
    return min(tried, key=lambda pair: pair[0])[1], rows


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
    tuning, report = halves(args.heldout)
    tuning = tuning[:tuning.rfind("\n", 0, args.tune_chars) + 1 or len(tuning)]
    best, tried = tune(generator, tuning, args.segment)
    (static, static_rate), (dynamic, dynamic_rate) = scored(generator, report, None), scored(generator, report, best)
    body = "\n".join(["| held-out text | static bpc | dynamic bpc | change | static chars/s | dynamic chars/s |",
                      "|---|---|---|---|---|---|",
                      f"| report half (not tuned on) | {static:.3f} | {dynamic:.3f} | {dynamic - static:+.3f} | "
                      f"{static_rate:,.0f} | {dynamic_rate:,.0f} |"])
    settings = f"rule {best.rule}, lr {best.lr:g}, decay {best.decay:g}, segment {best.segment}"
    note = (f"Command: `python bench/dynamic_eval.py --model RUN --heldout {args.heldout.name} --threads "
            f"{args.threads} --segment {args.segment} --tune-chars {args.tune_chars}` on a model of "
            f"`bench/charlm.py` "
            f"({sum(p.numel() for p in generator.model.parameters()):,} parameters). Settings chosen on the first "
            f"half of the held-out lines (its first {len(tuning):,} characters): {settings}; the report half has "
            f"{len(report):,} characters. Static evaluation reads the text in `data.batch_size` parallel parts, "
            f"dynamic evaluation as one part in order, one update per segment; {args.threads} thread(s), "
            f"{os.cpu_count()} cores.\n\nTuning (bpc on the tuning characters):\n\n| rule | lr | decay | bpc |\n"
            "|---|---|---|---|\n" + "\n".join(tried))
    print(body)
    write_section("Text generation: dynamic evaluation", body + "\n\n" + note)


if __name__ == "__main__":
    main()
