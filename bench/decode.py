"""Decoding benchmark: BLEU of greedy and beam search, and sentences/s of greedy, beam 5 and beam 10 by batch size.

usage: python bench/decode.py MODEL_DIR TEST_DATA [--subset 100] [--threads N] [--device auto] [--no-write]

TEST_DATA holds source and reference lines in any form `seq2seq evaluate --data` reads (FILE.tsv, FILE.jsonl,
SRC_FILE,TGT_FILE or a named source). Batch size 1 runs on the first --subset sources only, to keep it short.
Prints a Markdown table and appends it, with the command, the machine and the date, to the "## Decoding" section
of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime
import re
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCHMARKS, machine

from seq2seq import api
from seq2seq.data.datasets import load_pairs
from seq2seq.decoding.options import DecodingOptions
from seq2seq.evaluation import metrics

STRATEGIES = {"greedy": DecodingOptions(), "beam 5": DecodingOptions("beam", beam_size=5),
              "beam 10": DecodingOptions("beam", beam_size=10)}
BATCH_SIZES = (1, 32, 128)
TITLE = "## Decoding"


def timed(translator: api.Translator, sources: Sequence[str], options: DecodingOptions,
          batch_size: int) -> tuple[list[str], float]:
    """Best outputs and sentences per second (after one warm-up batch)."""
    translator.translate_detailed(sources[:batch_size], options, batch_size)
    started = time.perf_counter()
    results = translator.translate_detailed(sources, options, batch_size)
    return [found[0].text for found in results], len(sources) / (time.perf_counter() - started)


def measure(translator: api.Translator, sources: list[str], references: list[list[str]],
            subset: int) -> dict[str, dict[str, float]]:
    """For each strategy: BLEU (of the batch-128 outputs) and sentences/s at each batch size."""
    rows: dict[str, dict[str, float]] = {}
    for name, options in STRATEGIES.items():
        row = rows.setdefault(name, {})
        for batch_size in BATCH_SIZES:
            texts = sources[:subset] if batch_size == 1 else sources
            outputs, speed = timed(translator, texts, options, batch_size)
            row[f"batch {batch_size}"] = speed
            print(f"{name}, batch {batch_size}: {speed:.1f} sentences/s", file=sys.stderr)
        row["BLEU"] = metrics.bleu(outputs, references).score
    return rows


def table(rows: dict[str, dict[str, float]], subset: int) -> str:
    head = ["strategy", "BLEU", *(f"sent/s, batch {b}" + (f" ({subset} sentences)" if b == 1 else "")
                                  for b in BATCH_SIZES), "time / greedy, batch 128"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in rows.items():
        speeds = [f"{row[f'batch {b}']:.1f}" for b in BATCH_SIZES]
        ratio = rows["greedy"]["batch 128"] / row["batch 128"]
        lines.append(f"| {name} | {row['BLEU']:.2f} | " + " | ".join(speeds) + f" | {ratio:.2f}x |")
    return "\n".join(lines)


def append_entry(entry: str) -> None:
    """Add an entry at the end of the Decoding section of BENCHMARKS.md (made if missing), keeping earlier ones."""
    text = BENCHMARKS.read_text(encoding="utf-8") if BENCHMARKS.exists() else "# Benchmarks\n"
    section = re.search(rf"^{re.escape(TITLE)}\n.*?(?=^## |\Z)", text, re.S | re.M)
    if section is None:
        text = text.rstrip() + f"\n\n{TITLE}\n\n{entry}\n"
    else:
        end = section.end()
        text = text[:end].rstrip() + f"\n\n{entry}\n" + ("\n" + text[end:] if text[end:] else "")
    BENCHMARKS.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="trained run directory or checkpoint")
    parser.add_argument("data", help="test pairs: source and reference lines")
    parser.add_argument("--subset", type=int, default=100, help="sources decoded at batch size 1")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    translator = api.load_translator(args.model, args.device)
    pairs = load_pairs(args.data)
    sources, references = metrics.group_references([p.src for p in pairs], [p.tgt for p in pairs])
    result = table(measure(translator, sources, references, args.subset), args.subset)
    print(result)
    if not args.no_write:
        options = [a for a in sys.argv[1:] if a not in (args.model, args.data)]  # no paths of this machine
        command = shlex.join(["python", "bench/decode.py", "MODEL_DIR", "TEST_DATA", *options])
        append_entry(f"`{command}` on {datetime.date.today().isoformat()}: {len(sources)} sentences, "
                     f"{machine()}, {torch.get_num_threads()} threads, device {translator.device}.\n\n{result}")


if __name__ == "__main__":
    main()
