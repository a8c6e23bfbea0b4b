"""Beam search's length penalty chosen on dev: BLEU, chrF and brevity penalty (BP) of beam 5 on the peer setup's
dev set for each alpha of the GNMT penalty ((5 + length) / 6) ** alpha (0 ranks by log p alone), then the test set
with the alpha dev picked (best BLEU) beside the default (alpha 1) and greedy.

usage: python bench/length_penalty.py --run RUN --work SCRATCH_DIR [--alphas 0,0.6,1,1.4,1.8,2.2] [--threads 2]
RUN: a model trained by bench/translation.py (its data are SCRATCH_DIR/data, made by the peer kit).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_section
from translation import score_ours

from seq2seq.decoding.options import DecodingOptions

DEFAULT_ALPHA = 1.0


def beam(alpha: float) -> DecodingOptions:
    return DecodingOptions(strategy="beam", beam_size=5, length_penalty=alpha)


def row(label: str, scores: dict[str, float]) -> str:
    return f"| {label} | {scores['bleu']:.2f} | {scores['chrf']:.2f} | {scores['bp']:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a run of bench/translation.py")
    parser.add_argument("--work", type=Path, required=True, help="bench/translation.py's scratch folder")
    parser.add_argument("--alphas", default="0,0.6,1,1.4,1.8,2.2", help="comma-separated penalties to try on dev")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    data = args.work.resolve() / "data"
    alphas = [float(alpha) for alpha in args.alphas.split(",")]
    dev = {alpha: score_ours(args.run, data, args.threads, beam(alpha), "dev") for alpha in alphas}
    chosen = max(alphas, key=lambda alpha: dev[alpha]["bleu"])
    test = {"greedy": score_ours(args.run, data, args.threads),
            f"beam 5, alpha {DEFAULT_ALPHA:g} (the default)": score_ours(args.run, data, args.threads,
                                                                         beam(DEFAULT_ALPHA)),
            f"beam 5, alpha {chosen:g} (chosen on dev)": score_ours(args.run, data, args.threads, beam(chosen))}
    header = "| {} | BLEU | chrF | BP |\n|---|---|---|---|\n"
    body = (header.format("dev, beam 5") + "\n".join(row(f"alpha {alpha:g}", dev[alpha]) for alpha in alphas)
            + "\n\n" + header.format("test") + "\n".join(row(label, scores) for label, scores in test.items())
            + f"\n\nThe model: `{args.run.name}`, trained by bench/translation.py. Outputs detokenized, sacrebleu "
            f"against the raw references.\n\nCommand: `python bench/length_penalty.py --run RUN --work SCRATCH "
            f"--alphas {args.alphas} --threads {args.threads}`.")
    print(body)
    write_section("Beam search: the length penalty on eng-fra", body)


if __name__ == "__main__":
    main()
