"""Word language models of the Debian package descriptions with the full and the adaptive softmax
(`model.adaptive_softmax`): training tokens per second and dev perplexity after the same wall time.

Each run trains configs/classify-lm.yaml (10,000 words) on the classification training texts less the untuned split
(`bench/classify.py`'s) for --budget seconds on --threads threads, one run after the other, then scores the dev
descriptions (`TextGenerator.evaluate`: every token predicted from all the text before it in its part).

usage: python bench/lm_softmax.py [--data CLASSIFY_DIR] [--work SCRATCH_DIR] [--budget 300] [--threads 2]
                                  [--cutoffs 1000,4000 2000,5000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classify import DATA, split
from common import run_metered, write_section

ROOT = Path(__file__).resolve().parents[1]


def train(args: argparse.Namespace, cutoffs: str) -> tuple[Path, int, float]:
    """Train one language model for the budget; its run directory, peak RSS and wall seconds."""
    out = args.work / f"lm-{cutoffs.replace(',', '-') or 'full'}"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    command = [sys.executable, "-m", "seq2seq.cli", "train", "--task", "lm", "--config",
               str(ROOT / "configs" / "classify-lm.yaml"), "--train", str(args.work / "texts.txt"), "--out", str(out),
               "--max-time", str(args.budget), f"train.threads={args.threads}",
               f"model.adaptive_softmax=[{cutoffs}]"]
    _, peak, wall = run_metered(command, out.with_suffix(".log"), dict(os.environ, TQDM_DISABLE="1"))
    return out, peak, wall


def dev_perplexity(run: Path, data: Path, threads: int) -> float:
    """Perplexity of the best checkpoint on the dev descriptions, in a process of its own."""
    script = ("import json, sys, torch, seq2seq; torch.set_num_threads(int(sys.argv[3])); "
              "texts = [line.split('\\t', 1)[0] for line in open(sys.argv[2], encoding='utf-8')]; "
              "print(json.dumps(seq2seq.load(sys.argv[1], device='cpu').evaluate(texts)))")
    found = subprocess.run([sys.executable, "-c", script, str(run), str(data / "dev.tsv"), str(threads)],
                           check=True, capture_output=True, text=True)
    return float(json.loads(found.stdout)["perplexity"])


def throughput(run: Path) -> float:
    """Mean training tokens per second at the last logged step."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last = [record for record in records if record["event"] == "train"][-1]
    return float(last["mean_tokens_per_second"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with train.tsv and dev.tsv")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-lm-softmax")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds of each language model (default 300)")
    parser.add_argument("--threads", type=int, default=2, help="train.threads (default 2)")
    parser.add_argument("--cutoffs", nargs="*", default=["1000,4000", "2000,5000"],
                        help="model.adaptive_softmax values to run beside the full softmax")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing BENCHMARKS.md")
    args = parser.parse_args()
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    split(args.data, args.work)
    rows, speeds = [], {}
    for cutoffs in ["", *args.cutoffs]:
        run, peak, wall = train(args, cutoffs)
        speed = throughput(run)
        speeds[cutoffs] = speed
        perplexity = dev_perplexity(run, args.data, args.threads)
        name = f"adaptive, cutoffs [{cutoffs}]" if cutoffs else "full softmax"
        print(f"{name}: {speed:,.0f} tokens/s, dev perplexity {perplexity:.1f}", flush=True)
        rows.append(f"| {name} | {speed:,.0f} | {speed / speeds['']:.2f}x | {perplexity:.1f} | "
                    f"{wall:.0f} s, peak RSS {peak / 2**30:.2f} GiB |")
    body = "\n".join([
        f"`python bench/lm_softmax.py --budget {args.budget:.0f} --threads {args.threads} --cutoffs "
        f"{' '.join(args.cutoffs)}`: configs/classify-lm.yaml (a GRU of 128, 10,000 words) on the classification "
        "training descriptions for the same wall time each, one after the other; perplexity of the dev descriptions "
        "(per word token, `</s>` included).", "",
        "| output layer | training tokens/s | speed | dev perplexity | run |",
        "|---|---|---|---|---|", *rows])
    if args.no_write:
        print(body)
    else:
        write_section("Word language models: adaptive softmax", body)


if __name__ == "__main__":
    main()
