"""Beam search with the Transformer's key/value cache against recomputing the prefix at every step, and against an
RNN: sentences/s of beam 5 at batch 64 on the first sources of a test set, in fp32, and the share of outputs the
two Transformer ways give identically (they compute the same thing, so all of them should).

The recomputing baseline wraps the trained model: its state holds the tokens so far, and each step runs the decoder
over the whole prefix (as a decoder without a cache must) and keeps the last position's logits.

usage: python bench/transformer_cache.py --transformer RUN --rnn RUN --test TEST.tsv [--subset 500] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_section

import seq2seq
from seq2seq.data.datasets import load_pairs
from seq2seq.decoding.options import DecodingOptions
from seq2seq.models.decoder import Memory
from seq2seq.models.seq2seq import Seq2Seq
from seq2seq.models.state import SOURCE_ROWS, Axes, DecoderState, declared

PREFIX = Axes(0, {1: "steps"})  # (B, T): the tokens fed so far


class Recomputing(nn.Module):
    """A Transformer Seq2Seq whose step runs its decoder over the whole prefix instead of reading a cache."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model

    def encode(self, src: Tensor, src_lengths: Tensor) -> Memory:
        return self.model.encode(src, src_lengths)

    def init_state(self, memory: Memory) -> DecoderState:
        prefix = torch.zeros(memory.keys.size(0), 0, dtype=torch.long, device=memory.keys.device)
        return declared({"prefix": (prefix, PREFIX), "attention": (torch.zeros_like(memory.mask, dtype=torch.float),
                                                                    SOURCE_ROWS)})

    def step(self, tokens: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState]:
        prefix = torch.cat([state["prefix"], tokens.unsqueeze(1)], dim=1)
        features, after = self.model.decoder(prefix, self.model.init_state(memory), memory)
        return self.model.generator(features[:, -1]), declared({"prefix": (prefix, PREFIX),
                                                                "attention": (after["attention"], SOURCE_ROWS)})


def timed(translator: seq2seq.Translator, sources: list[str], options: DecodingOptions) -> tuple[list[str], float]:
    """The outputs and sentences/s of one pass (after a warm-up batch)."""
    translator.translate(sources[:8], options, batch_size=64)
    started = time.perf_counter()
    outputs = translator.translate(sources, options, batch_size=64)
    return outputs, len(sources) / (time.perf_counter() - started)  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transformer", type=Path, required=True, help="a trained model.arch=transformer run")
    parser.add_argument("--rnn", type=Path, required=True, help="a trained RNN run on the same data")
    parser.add_argument("--test", required=True, help="test data in any form `seq2seq evaluate --data` reads")
    parser.add_argument("--subset", type=int, default=500, help="decode the first N sources")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sources = [pair.src for pair in load_pairs(args.test)][:args.subset]
    options = DecodingOptions(strategy="beam", beam_size=5)
    cached = seq2seq.load(args.transformer, device="cpu", precision="fp32")
    recomputing = dataclasses.replace(cached, model=Recomputing(cached.model))
    rnn = seq2seq.load(args.rnn, device="cpu", precision="fp32")
    cached_out, cached_rate = timed(cached, sources, options)
    recomputed_out, recomputed_rate = timed(recomputing, sources, options)
    _, rnn_rate = timed(rnn, sources, options)
    same = sum(a == b for a, b in zip(cached_out, recomputed_out, strict=True)) / len(sources)
    body = (f"| beam 5, batch 64, fp32, {args.threads} thread(s) | sentences/s | against the cache |\n|---|---|---|\n"
            f"| Transformer, key/value cache | {cached_rate:,.1f} | 1.00 |\n"
            f"| Transformer, prefix recomputed each step | {recomputed_rate:,.1f} | "
            f"{recomputed_rate / cached_rate:.2f} |\n"
            f"| RNN ({rnn.config.model.arch}, {rnn.config.model.rnn}) | {rnn_rate:,.1f} | "
            f"{rnn_rate / cached_rate:.2f} |"
            f"\n\nThe first {len(sources):,} sources of the test set; cache and recomputation give the same output "
            f"for {same:.1%} of them.\n\nCommand: `python bench/transformer_cache.py --transformer RUN --rnn RUN "
            f"--test TEST --subset {args.subset} --threads {args.threads}` (the runs of bench/transformer.py).")
    print(body)
    write_section("Transformer decoding: the cache against recomputing the prefix", body)


if __name__ == "__main__":
    main()
