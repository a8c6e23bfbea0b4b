"""The command line of chat models: `seq2seq chat`, a conversation in the terminal."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from seq2seq import api
from seq2seq.cli import flags
from seq2seq.tasks.chat import Chatbot

COMMANDS = "/reset clears the history, /quit or Ctrl-D ends"


def repl(chatbot: Chatbot, stdin: TextIO, stdout: TextIO, prompt: str = "> ") -> None:
    """A terminal conversation: prompt, read a message, write the reply, repeat.

    `/reset` clears the history; `/quit` or the end of the input (Ctrl-D) ends; empty lines are ignored; any other
    line starting with `/` is answered with the list of commands.
    """
    stdout.write(f"({COMMANDS})\n")
    while True:
        stdout.write(prompt)
        stdout.flush()
        line = stdin.readline()
        if not line:
            stdout.write("\n")  # the shell's prompt goes on a line of its own after Ctrl-D
            return
        message = line.strip()
        if message == "/quit":
            return
        if message == "/reset":
            chatbot.reset()
            stdout.write("(history cleared)\n")
        elif message.startswith("/"):
            stdout.write(f"(unknown command {message.split()[0]}: {COMMANDS})\n")
        elif message:
            stdout.write(chatbot.reply(message) + "\n")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "chat", help="talk with a model trained on conversations",
        description="A conversation in the terminal: type a message, read the reply; /reset clears the history, "
                    "/quit or Ctrl-D ends. With --message, print the reply to one message and exit.")
    parser.add_argument("--model", required=True, help="run directory, checkpoint file or export (seq2seq export)")
    parser.add_argument("--history", type=int, default=0, metavar="K",
                        help="give the model the last K turns (messages and replies) before each message, joined "
                             "by ' | ', as in training data read with history=K (default 0)")
    parser.add_argument("--message", help="reply to this message only (for scripts)")
    flags.add_decoding(parser)
    flags.add_precision(parser)


def run_chat(args: argparse.Namespace) -> int:
    options = flags.decoding_options(args)
    chatbot = Chatbot(api.load_translator(args.model, precision=args.precision), args.history, options)
    if args.message is None:
        repl(chatbot, sys.stdin, sys.stdout)
    else:
        print(chatbot.reply(args.message))
    return 0
