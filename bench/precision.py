"""Training precision by measurement: bf16 autocast against fp32 on this CPU, on the peer setup of
bench/translation.py (configs/eng-fra-peers.yaml), trained side by side for the same budget with one thread each
(so that both see the same machine at the same time), then scored one after the other: updates, target tokens/s
and whether they held (last third against first third), best dev loss, test BLEU / chrF (greedy) and greedy
sentences/s. The note says which precision `train.precision=auto` picks on this CPU and why.

usage: python bench/precision.py --peers PEERS_DIR --work SCRATCH_DIR [--budget 300]
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_section
from translation import prepare, score_ours, train_run

PRECISIONS = ("bf16", "fp32")
ROWS = [("updates", "steps", "{:,.0f}"), ("target tokens/s (steady)", "steady_tokens_per_s", "{:,.0f}"),
        ("tokens/s, last third / first third", "rate_ratio", "{:.3f}"), ("best dev loss", "dev_loss", "{:.3f}"),
        ("test BLEU greedy", "bleu", "{:.2f}"), ("test chrF greedy", "chrf", "{:.2f}"),
        ("greedy sentences/s (batch 64, 1 thread)", "sentences_per_s", "{:,.0f}"),
        ("peak memory", "peak_gib", "{:.2f} GiB")]


def table(results: dict[str, dict[str, float]]) -> str:
    """Rows of figures, a column per precision and the first's ratio to the second."""
    first, second = PRECISIONS
    lines = [f"| | {first} | {second} | {first} / {second} |", "|---|---|---|---|"]
    for label, key, fmt in ROWS:
        ratio = results[first][key] / results[second][key] if results[second][key] else float("nan")
        lines.append(f"| {label} | {fmt.format(results[first][key])} | {fmt.format(results[second][key])} | "
                     f"{ratio:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=Path, required=True, help="the peer benchmark kit (its prepare_data.py)")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder for the data and runs")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds of training for each precision")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = prepare(args.peers.resolve(), work)

    def train(precision: str) -> tuple[Path, dict[str, float]]:
        return train_run(data, work, args.budget, 1, precision, (f"train.precision={precision}",))

    with ThreadPoolExecutor(len(PRECISIONS)) as pool:
        runs = dict(zip(PRECISIONS, pool.map(train, PRECISIONS), strict=True))
    results = {name: {**figures, **score_ours(out, data, 1)} for name, (out, figures) in runs.items()}

    import torch

    from seq2seq.utils.device import precision_reason

    body = (f"{table(results)}\n\nBoth trained at once for {args.budget:g} s, one thread each; scored one after the "
            f"other (greedy, each in the precision it trained in). `train.precision=auto` on this CPU: "
            f"{precision_reason('auto', torch.device('cpu'))}.\n\n"
            f"Command: `python bench/precision.py --peers PEERS --work SCRATCH --budget {args.budget:g}`.")
    print(body)
    write_section("Training precision: bf16 against fp32, eng-fra peer setup", body)


if __name__ == "__main__":
    main()
