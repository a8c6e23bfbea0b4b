"""The command line of corpus preparation: `seq2seq prepare` tokenizes a corpus once, into shards that
`seq2seq train --train DIR` reads through memory maps."""

from __future__ import annotations

import argparse

import torch

from seq2seq.cli import flags
from seq2seq.config import Config, apply_overrides, load_config
from seq2seq.data.corpus import PREPARED_KEYS, SHARD_PAIRS, prepare_corpus
from seq2seq.errors import Seq2SeqError
from seq2seq.tasks import registry
from seq2seq.training import distributed


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The `prepare` subcommand."""
    parser = commands.add_parser(
        "prepare", help="tokenize a corpus once into memory-mapped shards (then: train --train DIR)",
        description="Tokenize the training pairs in worker processes, build the vocabularies as train does, and write "
                    "the token ids into binary shards, with a manifest (each file's size and SHA-256, the settings, "
                    "tokenizers and vocabularies), into --out, which appears complete at the end. seq2seq train "
                    "--train DIR then trains without tokenizing, reading the shards through memory maps, so that the "
                    "corpus need not fit in memory. The settings of preparation are chosen here and train takes them "
                    f"from DIR: {', '.join(PREPARED_KEYS)}.")
    parser.add_argument("--train", required=True,
                        help="training pairs: FILE.tsv, FILE.jsonl or SRC_FILE,TGT_FILE (read line by line), or a "
                             "named source (cmudict:train, anki:fra-eng, chatterbot:...)")
    parser.add_argument("--dev", help="dev pairs, kept in DIR for train (default: data.dev_size training pairs held "
                                      "out, when set)")
    parser.add_argument("--out", required=True, help="the directory to write (a prepared directory there is replaced)")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="processes that tokenize and encode (default 0: one per CPU core; 1: no worker process)")
    parser.add_argument("--shard-pairs", type=int, default=SHARD_PAIRS, metavar="N",
                        help=f"training pairs per shard, the unit of work of a worker (default {SHARD_PAIRS:,})")
    parser.add_argument("--set", action="append", default=[], metavar="key=value",
                        help="a config override (repeat for more), as the key=value arguments")
    flags.add_config_flags(parser)


def run_prepare(args: argparse.Namespace) -> int:
    if args.workers < 0:
        raise Seq2SeqError(f"--workers must be a number of processes (0: one per CPU core), not {args.workers}")
    config = load_config(args.config) if args.config else Config()
    config = apply_overrides(config, [*flags.token_overrides(args), *args.set, *args.overrides])
    task = registry.validate(config, args.config)
    if not task.prepares:
        raise Seq2SeqError(f"seq2seq prepare prepares pairs to translate, not data of task {task.name}")
    workers = args.workers or distributed.process_count("auto", torch.device("cpu"))
    manifest = prepare_corpus(config, args.train, args.dev, args.out, workers, args.shard_pairs)
    print(f"prepared {manifest['pairs']:,} training pairs in {len(manifest['shards'])} shards into {args.out}; try: "
          f"seq2seq train --train {args.out} --out RUN")
    return 0
