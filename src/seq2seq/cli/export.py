"""The command line of ONNX export: `seq2seq export`."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export", help="export a translation model, language model or classifier to ONNX (runs without PyTorch: "
                       "seq2seq.onnx)",
        description="Write the encoder (a language model's prompt reading) and the decoder step, or a classifier's "
                    "one graph (token ids to label scores), as ONNX graphs, the tokenizers, vocabularies and a "
                    "manifest into --out; the graphs are checked against PyTorch before --out appears. seq2seq "
                    "translate / evaluate (generate / evaluate for a language model, classify / evaluate for a "
                    "classifier) --model OUT then run on ONNX Runtime. Several translation models sharing their "
                    "vocabularies export as an ensemble (each member's graphs in OUT/members/I), which decodes as "
                    "translate --model A B does. A classifier with model.bag_of_words and speech models do not "
                    "export yet.")
    parser.add_argument("--model", required=True, nargs="+",
                        help="run directory or checkpoint file of a translation model, a language model or a "
                             "classifier; several translation models: an ensemble")
    parser.add_argument("--out", required=True, help="directory to write the export into (new or empty)")
    parser.add_argument("--force", action="store_true", help="replace --out when it holds an earlier export")
    parser.add_argument("--int8", action="store_true",
                        help="quantize the weights to int8 (ONNX Runtime dynamic quantization): smaller; on CPU "
                             "check bench/onnx_runtime.py's figures before choosing it")


def run_export(args: argparse.Namespace) -> int:
    from seq2seq.onnx.export import export
    from seq2seq.tasks import registry

    manifest = export(args.model, args.out, int8=args.int8, force=args.force)
    check, models = manifest["check"], " ".join(args.model)
    print(f"exported {models} to {args.out} ({manifest['precision']}, opset {manifest['opset']}); largest "
          f"difference from PyTorch in fp32: {check['fp32_max_difference']:.1e} (tolerance {check['tolerance']:.0e})"
          + (f", in int8: {check['int8_max_difference']:.1e}" if "int8_max_difference" in check else ""))
    print(f"try: seq2seq {registry.get(manifest['task']).command} --model {args.out}")
    return 0
