"""ONNX benchmark: PyTorch fp32 and bf16 against ONNX Runtime fp32 and int8: size, speed, quality, torch-free start.

usage: python bench/onnx_runtime.py [--model RUN_DIR] [--data TEST_DATA] [--subset 400] [--threads 2] [--train-time 150]
                            [--label TEXT] [--title SECTION] [--no-write]

Without --model, trains a small G2P model on cmudict:train for --train-time seconds (configs/g2p.yaml, smaller).
Exports it (fp32 and --int8), then measures on the first --subset pairs of TEST_DATA (default cmudict:test): model
size on disk, greedy and beam 5 sentences/s at batch 1 (first 100 inputs) and 64, BLEU, exact match, the share of
outputs identical to PyTorch fp32, and the time and peak memory of a fresh torch-free process from start to its first
translation. Writes the --title section of BENCHMARKS.md (default "ONNX"). (Not named onnx.py: a script's folder
comes first on sys.path, and the file would hide the onnx package.)
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_section

from seq2seq import api
from seq2seq.config import apply_overrides, load_config
from seq2seq.data.datasets import load_pairs
from seq2seq.decoding.options import DecodingOptions
from seq2seq.evaluation import metrics
from seq2seq.onnx import load as load_export
from seq2seq.onnx.export import export
from seq2seq.training.checkpoint import resolve_checkpoint

ROOT = Path(__file__).resolve().parents[1]
RUNS = {"greedy, batch 1": (DecodingOptions(), 1), "greedy, batch 64": (DecodingOptions(), 64),
        "beam 5, batch 1": (DecodingOptions("beam", beam_size=5), 1),
        "beam 5, batch 64": (DecodingOptions("beam", beam_size=5), 64)}
BATCH_1_INPUTS = 100
SMALL_G2P = ["model.embedding_size=64", "model.hidden_size=128", "train.eval_every=100000", "train.device=cpu"]
FIRST_OUTPUT = """
import sys, time
started = time.perf_counter()
import seq2seq.onnx
print(seq2seq.onnx.load(sys.argv[1], threads=1).translate([sys.argv[2]])[0], file=sys.stderr)
peak = next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM'))  # kB; ru_maxrss
print(time.perf_counter() - started, int(peak) * 1024, 'torch' in sys.modules)  # would count the forking parent
"""


def train_small_g2p(out: Path, seconds: int) -> Path:
    config = apply_overrides(load_config(ROOT / "configs" / "g2p.yaml"), [*SMALL_G2P, f"train.max_time={seconds}"])
    api.train(config, load_pairs("cmudict:train"), load_pairs("cmudict:dev")[:500], out_dir=out)
    return out


def timed(translate: Callable[[list[str], DecodingOptions, int], list[str]], sources: list[str],
          options: DecodingOptions, batch_size: int) -> tuple[list[str], float]:
    """Outputs and sentences per second (after one warm-up batch)."""
    translate(sources[:batch_size], options, batch_size)
    started = time.perf_counter()
    outputs = translate(sources, options, batch_size)
    return outputs, len(sources) / (time.perf_counter() - started)


def measure(translate: Callable[[list[str], DecodingOptions, int], list[str]], sources: list[str],
            references: list[list[str]]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, (options, batch_size) in RUNS.items():
        texts = sources[:BATCH_1_INPUTS] if batch_size == 1 else sources
        outputs, row[name] = timed(translate, texts, options, batch_size)
        if batch_size > 1:
            row[f"outputs {name}"] = outputs
        print(f"  {name}: {row[name]:.1f} sentences/s", file=sys.stderr)
    scores = metrics.score_corpus(row["outputs greedy, batch 64"], references, ("bleu", "exact_match"))
    return {**row, **scores}


def first_output(export_dir: Path, text: str) -> tuple[float, int, bool]:
    """Seconds from a fresh process' start to its first translation, its peak RSS, whether torch got loaded."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", FIRST_OUTPUT, str(export_dir), text], capture_output=True,
                            text=True, check=True)
    wall = time.perf_counter() - started
    _, rss, torch_loaded = result.stdout.split()
    return wall, int(rss), torch_loaded == "True"


def size_mb(paths: Sequence[Path]) -> float:
    return sum(path.stat().st_size for path in paths) / 1e6


def table(rows: dict[str, dict[str, Any]], reference: dict[str, Any]) -> str:
    header = ["runtime", "size MB", *RUNS, "BLEU", "exact match %", "greedy = PyTorch %", "beam = PyTorch %"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in rows.items():
        same = [100 * sum(a == b for a, b in zip(row[f"outputs {run}"], reference[f"outputs {run}"], strict=True))
                / len(row[f"outputs {run}"]) for run in ("greedy, batch 64", "beam 5, batch 64")]
        cells = [name, f"{row['size']:.2f}", *(f"{row[run]:.1f}" for run in RUNS), f"{row['bleu']:.2f}",
                 f"{row['exact_match']:.2f}", f"{same[0]:.1f}", f"{same[1]:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(rows: dict[str, dict[str, Any]]) -> str:
    """Say plainly whether int8 pays on this machine: faster by a fifth, no exact match lost, outputs kept."""
    fp32, int8 = rows["ONNX Runtime fp32"], rows["ONNX Runtime int8"]
    faster = int8["greedy, batch 64"] / fp32["greedy, batch 64"]
    kept = 100 * sum(a == b for a, b in zip(int8["outputs greedy, batch 64"], fp32["outputs greedy, batch 64"],
                                            strict=True)) / len(fp32["outputs greedy, batch 64"])
    loss = fp32["exact_match"] - int8["exact_match"]
    worth = faster >= 1.2 and loss <= 0.5 and kept >= 99
    return (f"int8 is {fp32['size'] / int8['size']:.1f}x smaller and {faster:.2f}x as fast as fp32 at greedy batch 64; "
            f"it changes {100 - kept:.1f}% of the greedy outputs and {'loses' if loss > 0 else 'gains'} "
            f"{abs(loss):.2f} points of exact match: "
            + ("worth it here." if worth else "not worth it on this CPU unless disk or download size is what "
               "matters; use fp32."))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="run directory of a translation model (default: train a small G2P model)")
    parser.add_argument("--data", default="cmudict:test", help="test pairs")
    parser.add_argument("--subset", type=int, default=400, help="test pairs used")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-time", type=int, default=150, help="seconds of training without --model")
    parser.add_argument("--label", help="what the model is, for the report (default: RUN_DIR)")
    parser.add_argument("--title", default="ONNX", help="the BENCHMARKS.md section written (one per model)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scratch = Path(tempfile.mkdtemp(prefix="bench-onnx-"))
    model = Path(args.model) if args.model else train_small_g2p(scratch / "g2p", args.train_time)
    pairs = load_pairs(args.data)[:args.subset]
    sources, references = metrics.group_references([p.src for p in pairs], [p.tgt for p in pairs])
    exports = {"fp32": scratch / "fp32", "int8": scratch / "int8"}
    manifests = {name: export(model, path, int8=name == "int8") for name, path in exports.items()}
    rows: dict[str, dict[str, Any]] = {}
    for precision in ("fp32", "bf16"):
        print(f"PyTorch {precision}", file=sys.stderr)
        translator = api.load_translator(model, device="cpu", precision=precision)
        rows[f"PyTorch {precision}"] = {**measure(lambda t, o, b, m=translator: m.translate(t, o, batch_size=b),
                                                  sources, references), "size": size_mb([resolve_checkpoint(model)])}
    for name, path in exports.items():
        print(f"ONNX Runtime {name}", file=sys.stderr)
        onnx = load_export(path, threads=args.threads)
        rows[f"ONNX Runtime {name}"] = {**measure(lambda t, o, b, m=onnx: m.translate(t, o, batch_size=b), sources,
                                                  references),
                                        "size": size_mb(sorted(path.glob("*.onnx")))}
    start = {name: first_output(path, sources[0]) for name, path in exports.items()}
    described = args.label or (f"a small G2P model trained {args.train_time} s" if not args.model else "RUN_DIR")
    shown = [("RUN_DIR" if value == args.model else "TEST_FILE" if value == args.data and Path(value).exists()
              else value) for value in sys.argv[1:]]  # no paths of this machine in the report
    body = "\n\n".join([
        f"`python bench/onnx_runtime.py {shlex.join(shown)}`: {described}, "
        f"{len(sources)} test inputs of {'TEST_FILE' if Path(args.data).exists() else args.data} "
        f"({BATCH_1_INPUTS} at batch 1), {args.threads} threads; "
        "speeds in sentences/s; size: the checkpoint file (with its vocabularies) against the two graphs.",
        table(rows, rows["PyTorch fp32"]),
        "Fresh torch-free process, from start to its first translation (import seq2seq.onnx, load, translate one "
        "input): " + "; ".join(f"{name}: {wall:.2f} s, {rss / 1e6:.0f} MB peak resident"
                               f"{' (torch loaded!)' if loaded else ''}" for name, (wall, rss, loaded) in start.items())
        + ".",
        f"Largest difference from PyTorch at export: fp32 {manifests['fp32']['check']['fp32_max_difference']:.1e}, "
        f"int8 {manifests['int8']['check']['int8_max_difference']:.1e}. " + verdict(rows)])
    print(body)
    figures = {name: {k: v for k, v in row.items() if not k.startswith("outputs")} for name, row in rows.items()}
    print(json.dumps(figures), file=sys.stderr)
    if not args.no_write:
        write_section(args.title, body)


if __name__ == "__main__":
    main()
