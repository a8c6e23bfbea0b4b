"""The command line of ONNX export: `seq2seq export`, and exported directories in translate / evaluate / generate."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from seq2seq import api, generation
from seq2seq.errors import CheckpointError, ConfigError

MANIFEST = "manifest.json"  # = seq2seq.onnx.graphs.MANIFEST, named here so that plain checkpoints load without onnx
OTHER_TASK = {"seq2seq": "an exported translation model, not a language model (use seq2seq translate)",
              "lm": "an exported language model, which seq2seq generate, evaluate and serve run"}


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export", help="export a translation or language model to ONNX (runs without PyTorch: seq2seq.onnx)",
        description="Write the encoder (a language model's prompt reading) and the decoder step as ONNX graphs, the "
                    "tokenizers, vocabularies and a manifest into --out; the graphs are checked against PyTorch "
                    "before --out appears. seq2seq translate / evaluate (generate / evaluate for a language model) "
                    "--model OUT then run on ONNX Runtime. Several translation models sharing their vocabularies "
                    "export as an ensemble (each member's graphs in OUT/members/I), which decodes as translate "
                    "--model A B does.")
    parser.add_argument("--model", required=True, nargs="+",
                        help="run directory or checkpoint file of a translation model or a language model; several "
                             "translation models: an ensemble")
    parser.add_argument("--out", required=True, help="directory to write the export into (new or empty)")
    parser.add_argument("--force", action="store_true", help="replace --out when it holds an earlier export")
    parser.add_argument("--int8", action="store_true",
                        help="quantize the weights to int8 (ONNX Runtime dynamic quantization): smaller; on CPU "
                             "check bench/onnx_runtime.py's figures before choosing it")


def run_export(args: argparse.Namespace) -> int:
    from seq2seq.export import export

    manifest = export(args.model, args.out, int8=args.int8, force=args.force)
    check, models = manifest["check"], " ".join(args.model)
    print(f"exported {models} to {args.out} ({manifest['precision']}, opset {manifest['opset']}); largest "
          f"difference from PyTorch in fp32: {check['fp32_max_difference']:.1e} (tolerance {check['tolerance']:.0e})"
          + (f", in int8: {check['int8_max_difference']:.1e}" if "int8_max_difference" in check else ""))
    print(f"try: seq2seq {'generate' if manifest['task'] == 'lm' else 'translate'} --model {args.out}")
    return 0


def is_export(models: Sequence[str]) -> bool:
    """Whether --model names one directory written by `seq2seq export`."""
    return len(models) == 1 and _exported(models[0])


def _exported(model: str) -> bool:
    return (Path(model) / MANIFEST).is_file()


def load(models: Sequence[str], precision: str | None, loader: Callable[..., Any] = api.load_translator,
         task: str | None = "seq2seq") -> Any:
    """An exported directory of the task (None: of any task) on ONNX Runtime (precision is then the export's own),
    else loader(models, ...)."""
    if not is_export(models):
        exports = [model for model in models if _exported(model)]
        if exports:
            raise ConfigError(f"{exports[0]}: an exported model cannot join other models; export the checkpoints "
                              "together instead (seq2seq export --model A B --out DIR), then --model DIR")
        return loader(models, precision=precision)
    if precision:
        raise ConfigError("--precision does not apply to an exported model (export --int8 chooses int8)")
    from seq2seq.onnx import load as load_export

    loaded = load_export(models[0])
    found = loaded.manifest.get("task", "seq2seq")
    if task is not None and found != task:
        raise CheckpointError(f"{models[0]}: {OTHER_TASK.get(found, f'an exported model of task {found}')}")
    return loaded


def load_generator(model: str, precision: str | None) -> Any:
    """The language model of `seq2seq generate`: an exported directory on ONNX Runtime, or a run directory or
    checkpoint (`generation.load_generator`)."""
    return load([model], precision, lambda models, precision: generation.load_generator(models[0], precision=precision),
                task="lm")


def is_language_model(model: Any) -> bool:
    """Whether a loaded model writes text: a TextGenerator, or an exported language model (`seq2seq.onnx`'s
    OnnxGenerator, known by its manifest's task: onnxruntime is an extra, not imported here)."""
    return isinstance(model, generation.TextGenerator) or getattr(model, "manifest", {}).get("task") == "lm"
