"""The command line of checkpoint averaging: `seq2seq average`."""

from __future__ import annotations

import argparse

from seq2seq.errors import Seq2SeqError
from seq2seq.tasks import registry
from seq2seq.training.averaging import AVERAGED, last_checkpoints, write_average


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The `average` subcommand."""
    parser = commands.add_parser(
        "average", help="average the weights of several checkpoints of one model into a new run directory",
        description="Write the mean of the model weights of --checkpoints, or of the --last K numbered checkpoints "
                    "of --model (kept while training with train.keep_last=K or more), into --out as a run directory "
                    "that translate, evaluate and the Python API load like any other (without optimizer state).")
    sources = parser.add_mutually_exclusive_group(required=True)
    sources.add_argument("--model", metavar="DIR", help="run directory whose numbered checkpoints to average")
    sources.add_argument("--checkpoints", nargs="+", metavar="PATH",
                         help="checkpoint files or run directories (their best checkpoint) to average")
    parser.add_argument("--last", type=int, metavar="K", help="with --model: average its K newest checkpoints")
    parser.add_argument("--out", required=True, help="run directory to write (best.safetensors, config.yaml)")


def run_average(args: argparse.Namespace) -> int:
    if args.model and args.last is None:
        raise Seq2SeqError("--model needs --last K: how many of its newest checkpoints to average")
    if args.checkpoints and args.last is not None:
        raise Seq2SeqError("--last applies to --model, not to --checkpoints")
    paths = last_checkpoints(args.model, args.last) if args.model else args.checkpoints
    metadata = write_average(paths, args.out, check=lambda found: registry.of_metadata(found, paths[0]))
    steps = [entry["step"] for entry in metadata[AVERAGED]]
    at = f" (steps {', '.join(map(str, steps))})" if None not in steps else ""
    use = registry.get(metadata["config"]["task"]).command
    print(f"averaged {len(paths)} checkpoints{at} into {args.out}; try: seq2seq {use} --model {args.out}")
    return 0
