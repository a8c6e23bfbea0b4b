"""Command line: thin argparse subcommands over the Python API."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from seq2seq import api, checkpoint
from seq2seq.config import Config, apply_overrides, load_config
from seq2seq.data import Pair, read_lines
from seq2seq.datasets import load_pairs
from seq2seq.errors import Seq2SeqError

logger = logging.getLogger("seq2seq")

TRAIN_EXAMPLES = """examples:
  seq2seq train --train cmudict:train --dev cmudict:dev --out runs/g2p --config configs/g2p.yaml --max-time 300
  seq2seq train --train fra.txt --out runs/fr --tokens word data.src.language=en data.tgt.language=fr
  seq2seq train --out runs/fr --resume
"""


class OneLineParser(argparse.ArgumentParser):
    """Reports a bad flag or value as one line instead of usage + message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="seq2seq", description="Train, use and evaluate RNN sequence-to-sequence models.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    _add_train(commands)
    translate = commands.add_parser("translate", help="translate lines of text with a trained model",
                                    description="Read one input per line; write one output per line.")
    translate.add_argument("--model", required=True, help="run directory or checkpoint file")
    translate.add_argument("--input", help="input file (default: stdin)")
    translate.add_argument("--output", help="output file (default: stdout)")
    _add_decoding(translate)
    evaluate = commands.add_parser("evaluate", help="score a trained model on paired data",
                                   description="BLEU, chrF, exact match, WER, CER and perplexity.")
    evaluate.add_argument("--model", required=True, help="run directory or checkpoint file")
    evaluate.add_argument("--data", required=True, help="pairs: FILE.tsv, FILE.jsonl, SRC,TGT or a named source")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    _add_decoding(evaluate)
    return parser


def _add_train(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train", help="train a model", epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a seq2seq model. Data: FILE.tsv (src<TAB>tgt[<TAB>...]), FILE.jsonl ({src, tgt}), "
                    "SRC_FILE,TGT_FILE (aligned lines), or a named source: cmudict:train|dev|test, anki:fra-eng.")
    train.add_argument("--train", help="training pairs (required unless --resume)")
    train.add_argument("--dev", help="dev pairs, for early stopping and the best checkpoint")
    train.add_argument("--test", help="held-out pairs scored (with sample outputs) after training")
    train.add_argument("--out", required=True, help="run directory for checkpoints and metrics.jsonl")
    train.add_argument("--config", help="YAML config file")
    train.add_argument("--arch", choices=("context", "repeat", "attention"), help="model.arch")
    train.add_argument("--rnn", choices=("lstm", "gru"), help="model.rnn")
    train.add_argument("--tokens", choices=("char", "word", "subword"), help="tokens on both sides")
    train.add_argument("--src-tokens", choices=("char", "word", "subword"), help="source tokens")
    train.add_argument("--tgt-tokens", choices=("char", "word", "subword"), help="target tokens")
    train.add_argument("--max-time", type=float, help="seconds of wall time for the whole command")
    train.add_argument("--epochs", type=int, help="train.epochs")
    train.add_argument("--resume", action="store_true", help="continue exactly from the last checkpoint in --out")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.lr=5e-4")


def _add_decoding(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per batch (default 64)")
    parser.add_argument("--max-length", type=int, default=0, help="maximum output tokens (default: from training)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        return {"train": run_train, "translate": run_translate, "evaluate": run_evaluate}[args.command](args)
    except Seq2SeqError as error:
        print(f"seq2seq {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"seq2seq {args.command}: interrupted", file=sys.stderr)
        return 130


def train_config(args: argparse.Namespace) -> Config:
    """The config from --config, the named flags and key=value overrides, in that order."""
    config = load_config(args.config) if args.config else Config()
    flags = [("model.arch", args.arch), ("model.rnn", args.rnn), ("train.max_time", args.max_time),
             ("train.epochs", args.epochs)]
    for side in ("src", "tgt"):
        flags.append((f"data.{side}.kind", getattr(args, f"{side}_tokens") or args.tokens))
    apply_overrides(config, [f"{key}={value}" for key, value in flags if value is not None])
    return apply_overrides(config, args.overrides)


def run_train(args: argparse.Namespace) -> int:
    if not args.train and not args.resume:
        raise Seq2SeqError("--train is required (or --resume to continue a run)")
    config = train_config(args)
    train_pairs = load_pairs(args.train) if args.train else []
    dev_pairs = load_pairs(args.dev) if args.dev else []
    if args.resume and not args.train:
        raise Seq2SeqError("--resume needs the same --train data as the run it continues")
    translator = api.train(config, train_pairs, dev_pairs, args.out, resume=args.resume)
    if args.test:
        _report(translator, load_pairs(args.test))
    print(f"model saved in {args.out}; try: seq2seq translate --model {args.out}")
    return 0


def _report(translator: api.Translator, pairs: list[Pair], samples: int = 10) -> None:
    """Print sample outputs and the scores on held-out pairs."""
    head = pairs[:: max(1, len(pairs) // samples)][:samples]
    for pair, output in zip(head, translator.translate([p.src for p in head]), strict=True):
        mark = "ok" if output == pair.tgt else "  "
        print(f"{mark} {pair.src} -> {output}   (reference: {pair.tgt})")
    _print_scores(translator.evaluate(pairs))


def _print_scores(scores: dict[str, float | str]) -> None:
    print(f"BLEU = {scores['bleu']:.2f}  ({scores['bleu_signature']})")
    print(f"chrF = {scores['chrf']:.2f}  ({scores['chrf_signature']})")
    print(f"exact match = {scores['exact_match']:.2f}%   WER = {scores['wer']:.2f}%   CER = {scores['cer']:.2f}%   "
          f"perplexity = {scores['perplexity']:.3f}")


def run_translate(args: argparse.Namespace) -> int:
    translator = api.load(args.model)
    source = read_lines(args.input) if args.input else enumerate(sys.stdin.read().splitlines(), start=1)
    lines = [text for _, text in source]
    outputs = translator.translate(lines, max_length=args.max_length, batch_size=args.batch_size)
    text = "".join(output + "\n" for output in outputs)
    if args.output:
        _write_atomically(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    translator = api.load(args.model)
    scores = translator.evaluate(load_pairs(args.data), batch_size=args.batch_size)
    if args.json:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}))
    else:
        _print_scores(scores)
    return 0


def _write_atomically(path: Path, text: str) -> None:
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o666 & ~checkpoint._umask())  # mkstemp makes 0600 files
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


if __name__ == "__main__":
    sys.exit(main())
