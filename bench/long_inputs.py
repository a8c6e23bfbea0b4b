"""Long inputs: decoding time against source length, with the attention in its elementwise form only (before) and
in the form chosen by the product's size (after, `attention.LARGE_PRODUCT`).

usage: python bench/long_inputs.py [--lengths 10,30,100,300,1000] [--batch-sizes 1,32] [--steps 50] [--no-write]

A randomly initialised attention model (the summarization size: hidden 256, LSTM, bidirectional encoder) decodes
greedily exactly --steps tokens per sentence (min_length = max_length), so that the time depends only on the source
length; one thread, fp32. Prints a Markdown table and writes it to the "Long inputs" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_section

from seq2seq.config import ModelConfig
from seq2seq.decoding.options import DecodingOptions
from seq2seq.decoding.search import decode
from seq2seq.models import attention
from seq2seq.models.seq2seq import Seq2Seq

VOCAB = 8000


def seconds_per_batch(model: Seq2Seq, length: int, batch_size: int, options: DecodingOptions) -> float:
    """Best of three timed decodes of one batch of random sources of this length."""
    src = torch.randint(4, VOCAB, (batch_size, length))
    lengths = torch.full((batch_size,), length)
    decode(model, src, lengths, options)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        decode(model, src, lengths, options)
        times.append(time.perf_counter() - started)
    return min(times)


def measure(lengths: list[int], batch_sizes: list[int], steps: int, score: str) -> list[str]:
    """Markdown rows: score, batch size, source length, ms per sentence before and after, speed-up."""
    torch.manual_seed(0)
    config = ModelConfig(arch="attention", attention=score, hidden_size=256, embedding_size=128, bidirectional=True)
    model = Seq2Seq(config, VOCAB, VOCAB).eval()
    options = DecodingOptions(max_length=steps, min_length=steps - 1)
    rows, chosen = [], attention.LARGE_PRODUCT
    for batch_size in batch_sizes:
        for length in lengths:
            attention.LARGE_PRODUCT = 1 << 62
            before = seconds_per_batch(model, length, batch_size, options)
            attention.LARGE_PRODUCT = chosen
            after = seconds_per_batch(model, length, batch_size, options)
            rows.append(f"| {score} | {batch_size} | {length} | {1000 * before / batch_size:.1f} | "
                        f"{1000 * after / batch_size:.1f} | {before / after:.2f}x |")
            print(rows[-1], file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="10,30,100,300,1000")
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--scores", default="general,bahdanau")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    lengths, batch_sizes = ([int(x) for x in text.split(",")] for text in (args.lengths, args.batch_sizes))
    rows = [row for score in args.scores.split(",") for row in measure(lengths, batch_sizes, args.steps, score)]
    table = "\n".join(["| attention | batch | source tokens | ms/sentence before | ms/sentence after | speed-up |",
                       "|---|---:|---:|---:|---:|---:|", *rows])
    print(table)
    if not args.no_write:
        command = "python bench/long_inputs.py " + shlex.join(sys.argv[1:])
        write_section("Long inputs", f"{table}\n\n`{command.strip()}`: greedy, {args.steps} output tokens per "
                      "sentence, one thread, fp32, random weights. Before: elementwise attention at every length; "
                      f"after: batched matrix products once a (B, S, H) product exceeds {attention.LARGE_PRODUCT:,} "
                      "elements (hidden 256: batch 64 at 1000 tokens). Below that both columns run the same code, "
                      "so their ratio shows the noise. The encoder and Bahdanau's tanh over (B, S, H) dominate at "
                      "long sources; the switch matters only for the largest products.")


if __name__ == "__main__":
    main()
