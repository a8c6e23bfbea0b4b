"""Speech export benchmark: a trained speech model in PyTorch (as trained, and fp32) against its ONNX export on ONNX
Runtime (fp32): CER, the share of transcripts identical to PyTorch fp32, transcription speed, and a fresh process'
time and peak memory to its first transcript (and whether it loaded torch).

usage: python bench/speech_export.py --model RUN_DIR --data LIST [--threads 1] [--label TEXT] [--no-write]

RUN_DIR is a speech run (`bench/speech.py` writes them), LIST an `audio.wav<TAB>transcript` list (its test words).
Features are computed once beforehand: the speeds are those of decoding (greedy and beam 5, batch 64; greedy batch 1
on the first 50 files), in utterances per second.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_section

from seq2seq import api
from seq2seq.data.audio import load_frames, read_audio_list
from seq2seq.decoding.options import DecodingOptions
from seq2seq.onnx import load as load_export
from seq2seq.onnx.export import export
from seq2seq.tasks.transcribing import Transcribing, score_transcripts

RUNS = {"greedy, batch 64": (DecodingOptions(), 64), "beam 5, batch 64": (DecodingOptions("beam", beam_size=5), 64),
        "greedy, batch 1": (DecodingOptions(), 1)}
BATCH_1_FILES = 50
FIRST_TRANSCRIPT = """
import importlib, sys, time
started = time.perf_counter()
model = importlib.import_module(sys.argv[3]).load(sys.argv[1])
model.transcribe([sys.argv[2]])
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:")).split()[1]
print(time.perf_counter() - started, int(peak) * 1024, "torch" in sys.modules)
"""
"""A fresh process' first transcript; its peak RSS from /proc (getrusage's would include the parent's, forked)."""


def timed(transcriber: Transcribing, frames: list[Any], options: DecodingOptions, batch_size: int
          ) -> tuple[list[str], float]:
    """Transcripts and utterances per second (after one warm-up batch)."""
    transcriber.best_transcripts(frames[:batch_size], options, batch_size)
    started = time.perf_counter()
    texts = transcriber.best_transcripts(frames, options, batch_size)
    return texts, len(frames) / (time.perf_counter() - started)


def measure(transcriber: Transcribing, frames: list[Any], references: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, (options, batch_size) in RUNS.items():
        row[f"texts {name}"], row[name] = timed(transcriber, frames[:BATCH_1_FILES] if batch_size == 1 else frames,
                                                options, batch_size)
        print(f"  {name}: {row[name]:.1f} utterances/s", file=sys.stderr)
    row["cer greedy"] = score_transcripts(row["texts greedy, batch 64"], references)["cer"]
    row["cer beam"] = score_transcripts(row["texts beam 5, batch 64"], references)["cer"]
    return row


def first_transcript(model: Path, wav: str, module: str) -> tuple[float, int, bool]:
    """Seconds from a fresh process' start to its first transcript with module's load (seq2seq's, or
    seq2seq.onnx's for an export), its peak RSS, whether torch got loaded."""
    result = subprocess.run([sys.executable, "-c", FIRST_TRANSCRIPT, str(model), wav, module], capture_output=True,
                            text=True, check=True)
    seconds, rss, torch_loaded = result.stdout.split()
    return float(seconds), int(rss), torch_loaded == "True"


def same_share(row: dict[str, Any], reference: dict[str, Any], run: str) -> float:
    pairs = list(zip(row[f"texts {run}"], reference[f"texts {run}"], strict=True))
    return 100 * sum(a == b for a, b in pairs) / len(pairs)


def table(rows: dict[str, dict[str, Any]], reference: dict[str, Any]) -> str:
    header = ["runtime", *(f"{run} /s" for run in RUNS), "CER % greedy", "CER % beam 5", "greedy = PyTorch fp32 %",
              "beam = PyTorch fp32 %", "first transcript s", "peak RSS MB", "torch loaded"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in rows.items():
        cells = [name, *(f"{row[run]:.1f}" for run in RUNS), f"{row['cer greedy']:.2f}", f"{row['cer beam']:.2f}",
                 f"{same_share(row, reference, 'greedy, batch 64'):.1f}",
                 f"{same_share(row, reference, 'beam 5, batch 64'):.1f}", f"{row['first'][0]:.2f}",
                 f"{row['first'][1] / 1e6:.0f}", "yes" if row["first"][2] else "no"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a speech run directory")
    parser.add_argument("--data", type=Path, required=True, help="an audio.wav<TAB>transcript list")
    parser.add_argument("--threads", type=int, default=1, help="threads of PyTorch and ONNX Runtime (default 1)")
    parser.add_argument("--label", default="", help="what RUN_DIR and LIST are, for the report")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing BENCHMARKS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pairs = read_audio_list(args.data)
    with tempfile.TemporaryDirectory() as scratch:
        exported = Path(scratch) / "export"
        started = time.perf_counter()
        manifest = export(args.model, exported)
        export_seconds = time.perf_counter() - started
        systems: dict[str, tuple[Callable[[], Transcribing], Path, str]] = {
            "PyTorch, as trained": (lambda: api.load_transcriber(args.model), args.model, "seq2seq"),
            "PyTorch fp32": (lambda: api.load_transcriber(args.model, precision="fp32"), args.model, "seq2seq"),
            "ONNX Runtime fp32": (lambda: load_export(exported, threads=args.threads), exported, "seq2seq.onnx")}
        rows = {}
        for name, (loaded, folder, module) in systems.items():
            print(name, file=sys.stderr)
            transcriber = loaded()
            frames = [load_frames(pair.src, transcriber.config.data.audio) for pair in pairs]
            rows[name] = {**measure(transcriber, frames, [pair.tgt for pair in pairs]),
                          "first": first_transcript(folder, pairs[0].src, module)}
    command = f"python bench/speech_export.py --model RUN --data LIST --threads {args.threads}"
    config = rows["PyTorch fp32"]
    described = f" ({args.label})" if args.label else ""
    body = "\n".join([
        f"`{command}`{described}: {len(pairs)} utterances, {args.threads} thread(s); features computed "
        "beforehand, so the speeds are decoding's (utterances/s); the first transcript is a fresh process' "
        f"(loading and features included). Export took {export_seconds:.1f} s; its self-check found at most "
        f"{manifest['check']['fp32_max_difference']:.1e} between the graphs and PyTorch.", "",
        table(rows, config)])
    if args.no_write:
        print(body)
    else:
        write_section("Speech export (ONNX)", body)


if __name__ == "__main__":
    main()
