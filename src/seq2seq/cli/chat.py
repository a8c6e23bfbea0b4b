"""The terminal conversation of `seq2seq chat`."""

from __future__ import annotations

from typing import TextIO

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
