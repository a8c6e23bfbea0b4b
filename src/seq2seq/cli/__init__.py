"""The command line, `seq2seq`: one module per command group; the only place that prints."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Run the command line on argv (default: sys.argv[1:]); the exit code."""
    from seq2seq.cli.commands import main as run

    return run(argv)
