"""The command line of training: `seq2seq train` for every task."""

from __future__ import annotations

import argparse

from seq2seq import api
from seq2seq.cli import flags, tasks
from seq2seq.config import CHOICES, Config, apply_overrides, config_values, load_config, set_value
from seq2seq.data.datasets import is_prepared
from seq2seq.errors import Seq2SeqError
from seq2seq.tasks import registry
from seq2seq.training import distributed
from seq2seq.utils.device import resolve_device

TRAIN_EXAMPLES = """examples:
  seq2seq train --train cmudict:train --dev cmudict:dev --out runs/g2p --config configs/g2p.yaml --max-time 300
  seq2seq train --train fra.txt --out runs/fr --tokens word data.src.language=en data.tgt.language=fr
  seq2seq train --out runs/fr --resume
  seq2seq train --task lm --train fortunes.txt --out runs/fortunes --config configs/charlm.yaml data.entries=delimiter
  seq2seq train --task lm --train texts.txt --out runs/texts-lm --config configs/classify-lm.yaml
  seq2seq train --task classify --train labelled.tsv --out runs/cls --config configs/classify.yaml --init runs/texts-lm
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
    parser.add_argument("--task", choices=registry.names(), help="task: seq2seq (pairs, the default), lm (a "
                       "language model on plain text: a file or a folder; entries as data.entries says), classify "
                       "(text<TAB>label TSV or {text, label} JSONL) or speech (audio.wav<TAB>transcript lists)")
    parser.add_argument("--arch", help="model.arch: context, repeat, attention, transformer (or a registered kind)")
    parser.add_argument("--rnn", choices=CHOICES["rnn"], help="model.rnn")
    parser.add_argument("--max-time", type=float, help="seconds of wall time for the whole command; training goes on "
                       "for all of them unless train.epochs is set (--epochs, key=value or --config)")
    parser.add_argument("--epochs", type=int, help="train.epochs")
    parser.add_argument("--init", metavar="LM_RUN", help="model.init (tasks classify and seq2seq): start from the "
                       "tokenizer, vocabulary, embeddings and RNN of a language model trained with --task lm (its run "
                       "directory or checkpoint); a translation model takes them for each side that reads its tokens")
    parser.add_argument("--resume", action="store_true", help="continue exactly from the last checkpoint in --out")
    parser.add_argument("--nproc", metavar="N|auto", help="train data-parallel in N local processes started by "
                       "torch.distributed.run (each with its share of every batch; auto: one per GPU, or per CPU "
                       "core); see docs/scale.md")
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
    epochs = 0 if args.max_time is not None and not caps_epochs(args) else args.epochs
    named = [("task", args.task), ("model.arch", args.arch), ("model.rnn", args.rnn),
             ("train.max_time", args.max_time), ("train.epochs", epochs)]
    apply_overrides(config, [f"{key}={value}" for key, value in named if value is not None])
    if args.init is not None:  # a path, not a YAML value
        set_value(config, "model.init", args.init, "--init")
    return apply_overrides(config, [*flags.token_overrides(args), *args.overrides])


def caps_epochs(args: argparse.Namespace) -> bool:
    """Whether the command sets train.epochs (--epochs, key=value, its --config file, the resumed run's config):
    else a --max-time run trains for the whole budget."""
    train = config_values(args.config).get("train") if args.config else None
    return bool(args.epochs is not None or args.resume or (isinstance(train, dict) and "epochs" in train)
                or any(override.startswith("train.epochs=") for override in args.overrides))


def run_train(args: argparse.Namespace) -> int:
    if not args.train and not args.resume:
        raise Seq2SeqError("--train is required (or --resume to continue a run)")
    config = train_config(args)
    task = registry.validate(config, args.config)
    if args.nproc and not distributed.launched():
        processes = distributed.process_count(args.nproc, resolve_device(config.train.device))
        if processes > 1:  # the ranks run this command again (they see that torchrun started them)
            distributed.launch(processes, args.argv)
            return 0
    if not args.train:
        raise Seq2SeqError("--resume needs the same --train data as the run it continues")
    prepared = is_prepared(args.train)
    if prepared and not task.prepares:
        raise Seq2SeqError(f"{args.train}: a prepared directory holds pairs to translate, not data of task "
                           f"{task.name}")
    dev = task.read(config, args.dev) if args.dev else []
    if prepared:  # tokenized by seq2seq prepare: the examples are read from its shards
        model = api.train_prepared(config, args.train, dev, args.out, resume=args.resume)
    else:  # handed over without a reference kept here, so that the data is freed once it is encoded
        model = task.train(config, task.read(config, args.train), dev, args.out, args.resume)
    if not distributed.current().main:
        return 0
    if args.test:
        tasks.report(task, model, task.read(config, args.test))
    print(f"model saved in {args.out}; try: seq2seq {task.command} --model {args.out}")
    return 0
