"""The command line of training: `seq2seq train` for every task."""

from __future__ import annotations

import argparse

from seq2seq import api
from seq2seq.cli import classify, flags, generate, speech, translate
from seq2seq.config import CHOICES, Config, apply_overrides, load_config
from seq2seq.data.datasets import is_prepared, load_pairs
from seq2seq.data.text import read_entries
from seq2seq.errors import Seq2SeqError
from seq2seq.tasks.lm import train_language_model
from seq2seq.training import distributed
from seq2seq.utils.device import resolve_device

TRAIN_EXAMPLES = """examples:
  seq2seq train --train cmudict:train --dev cmudict:dev --out runs/g2p --config configs/g2p.yaml --max-time 300
  seq2seq train --train fra.txt --out runs/fr --tokens word data.src.language=en data.tgt.language=fr
  seq2seq train --out runs/fr --resume
  seq2seq train --task lm --train fortunes.txt --out runs/fortunes --config configs/charlm.yaml data.entries=delimiter
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train", help="train a model", epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a seq2seq model. Data: FILE.tsv (src<TAB>tgt[<TAB>...]), FILE.jsonl ({src, tgt}), "
                    "SRC_FILE,TGT_FILE (aligned lines), or a named source: cmudict:train|dev|test, anki:fra-eng.")
    parser.add_argument("--train", help="training pairs, or a directory written by seq2seq prepare (required unless "
                                       "--resume)")
    parser.add_argument("--dev", help="dev pairs, for early stopping and the best checkpoint")
    parser.add_argument("--test", help="held-out pairs scored (with sample outputs) after training")
    parser.add_argument("--out", required=True, help="run directory for checkpoints and metrics.jsonl")
    parser.add_argument("--task", choices=CHOICES["task"], help="task: seq2seq (pairs, the default), lm (a "
                       "language model on plain text: a file or a folder; entries as data.entries says) or "
                       "classify (text<TAB>label TSV or {text, label} JSONL)")
    parser.add_argument("--arch", choices=CHOICES["arch"], help="model.arch")
    parser.add_argument("--rnn", choices=CHOICES["rnn"], help="model.rnn")
    parser.add_argument("--max-time", type=float, help="seconds of wall time for the whole command")
    parser.add_argument("--epochs", type=int, help="train.epochs")
    parser.add_argument("--resume", action="store_true", help="continue exactly from the last checkpoint in --out")
    parser.add_argument("--nproc", metavar="N|auto", help="train data-parallel in N local processes started by "
                       "torch.distributed.run (each with its share of every batch; auto: one per GPU, or per CPU "
                       "core); see the README's Scale section")
    flags.add_config_flags(parser)


def train_config(args: argparse.Namespace) -> Config:
    """The config from --config (or the saved run's with --resume), the named flags and key=value overrides."""
    if args.resume and args.config:
        raise Seq2SeqError("--resume continues with the saved config; change train.* values with key=value instead")
    if args.resume:
        config = api.saved_config(args.out)
    elif args.config:
        config = load_config(args.config)
    else:
        config = Config()
    named = [("task", args.task), ("model.arch", args.arch), ("model.rnn", args.rnn),
             ("train.max_time", args.max_time), ("train.epochs", args.epochs)]
    apply_overrides(config, [f"{key}={value}" for key, value in named if value is not None])
    return apply_overrides(config, [*flags.token_overrides(args), *args.overrides])


def run_train(args: argparse.Namespace) -> int:
    if not args.train and not args.resume:
        raise Seq2SeqError("--train is required (or --resume to continue a run)")
    config = train_config(args)
    if args.nproc and not distributed.launched():
        processes = distributed.process_count(args.nproc, resolve_device(config.train.device))
        if processes > 1:  # the ranks run this command again (they see that torchrun started them)
            distributed.launch(processes, args.argv)
            return 0
    prepared = bool(args.train) and is_prepared(args.train)
    if prepared and config.task != "seq2seq":
        raise Seq2SeqError(f"{args.train}: a prepared directory holds pairs for task seq2seq, not {config.task}")
    if config.task == "lm":
        return _train_language_model(args, config)
    if config.task == "classify":
        return classify.run_train(args, config)
    if config.task == "speech":
        return speech.run_train(args, config)
    if args.resume and not args.train:
        raise Seq2SeqError("--resume needs the same --train data as the run it continues")
    dev_pairs = load_pairs(args.dev) if args.dev else []
    if prepared:  # tokenized by seq2seq prepare: the examples are read from its shards
        translator = api.train_prepared(config, args.train, dev_pairs, args.out, resume=args.resume)
    else:  # handed over without a reference kept here, so that the texts are freed once they are encoded
        translator = api.train(config, load_pairs(args.train), dev_pairs, args.out, resume=args.resume)
    if not distributed.current().main:
        return 0
    if args.test:
        translate.report(translator, load_pairs(args.test))
    print(f"model saved in {args.out}; try: seq2seq translate --model {args.out}")
    return 0


def _train_language_model(args: argparse.Namespace, config: Config) -> int:
    """train --task lm: --train, --dev and --test are text files or folders, split into entries by data.entries."""
    if not args.train:
        raise Seq2SeqError("--resume needs the same --train text as the run it continues")
    data = config.data
    dev = read_entries(args.dev, data.entries, data.entry_delimiter) if args.dev else []
    generator = train_language_model(config, read_entries(args.train, data.entries, data.entry_delimiter), dev,
                                     args.out, resume=args.resume)
    if not distributed.current().main:
        return 0
    if args.test:
        generate.print_text_scores(generator.evaluate(generator.read(args.test)), as_json=False)
    print(f"model saved in {args.out}; try: seq2seq generate --model {args.out} --temperature 0.5")
    return 0
