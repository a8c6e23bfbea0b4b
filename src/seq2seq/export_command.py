"""The command line of ONNX export: `seq2seq export`, and exported directories in translate / evaluate."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from seq2seq import api
from seq2seq.errors import ConfigError

MANIFEST = "manifest.json"  # = seq2seq.onnx.graphs.MANIFEST, named here so that plain checkpoints load without onnx


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export", help="export a translation model to ONNX (runs without PyTorch: seq2seq.onnx)",
        description="Write the encoder and the decoder step as ONNX graphs, the tokenizers, vocabularies and a "
                    "manifest into --out; the graphs are checked against PyTorch before the export is reported. "
                    "seq2seq translate / evaluate --model OUT then run on ONNX Runtime.")
    parser.add_argument("--model", required=True, help="run directory or checkpoint file of a translation model")
    parser.add_argument("--out", required=True, help="directory to write the export into")
    parser.add_argument("--int8", action="store_true",
                        help="quantize the weights to int8 (ONNX Runtime dynamic quantization): smaller; on CPU "
                             "check bench/onnx_runtime.py's figures before choosing it")


def run_export(args: argparse.Namespace) -> int:
    from seq2seq.export import export

    manifest = export(args.model, args.out, int8=args.int8)
    check = manifest["check"]
    print(f"exported {args.model} to {args.out} ({manifest['precision']}, opset {manifest['opset']}); largest "
          f"difference from PyTorch in fp32: {check['fp32_max_difference']:.1e} (tolerance {check['tolerance']:.0e})"
          + (f", in int8: {check['int8_max_difference']:.1e}" if "int8_max_difference" in check else ""))
    print(f"try: seq2seq translate --model {args.out}")
    return 0


def is_export(models: Sequence[str]) -> bool:
    """Whether --model names one directory written by `seq2seq export`."""
    return len(models) == 1 and (Path(models[0]) / MANIFEST).is_file()


def load(models: Sequence[str], precision: str | None, loader: Callable[..., Any] = api.load_translator) -> Any:
    """An exported directory on ONNX Runtime (precision is then the export's own), else loader(models, ...)."""
    if not is_export(models):
        return loader(models, precision=precision)
    if precision:
        raise ConfigError("--precision does not apply to an exported model (export --int8 chooses int8)")
    from seq2seq.onnx import load as load_export

    return load_export(models[0])
