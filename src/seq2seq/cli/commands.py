"""The command line's table of commands: one parser with a subcommand per command group, and the dispatch."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from seq2seq.cli import (
    average,
    chat,
    classify,
    experiments,
    export,
    flags,
    generate,
    prepare,
    serve,
    speech,
    tasks,
    train,
    translate,
)
from seq2seq.errors import Seq2SeqError
from seq2seq.utils import runtime


class OneLineParser(argparse.ArgumentParser):
    """Reports a bad flag or value as one line instead of usage + message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="seq2seq", description="Train, use and evaluate RNN sequence-to-sequence models.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    train.add_parser(commands)
    translate.add_parsers(commands)
    generate.add_parser(commands)
    classify.add_parser(commands)
    speech.add_parser(commands)
    chat.add_parser(commands)
    serve.add_parser(commands)
    export.add_parser(commands)
    prepare.add_parser(commands)
    average.add_parser(commands)
    experiments.add_parsers(commands)  # compare, plot
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    runtime.configure_process()
    args = flags.parse_intermixed(build_parser(), list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        commands = {"train": train.run_train, "translate": translate.run_translate,
                    "summarize": translate.run_translate, "evaluate": tasks.run_evaluate,
                    "generate": generate.run_generate, "chat": chat.run_chat,
                    "classify": classify.run_classify, "transcribe": speech.run_transcribe,
                    "serve": serve.run_serve, "export": export.run_export, "prepare": prepare.run_prepare,
                    "average": average.run_average, "compare": experiments.run_compare,
                    "plot": experiments.run_plot}
        return commands[args.command](args)
    except Seq2SeqError as error:
        print(f"seq2seq {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"seq2seq {args.command}: interrupted", file=sys.stderr)
        return 130
