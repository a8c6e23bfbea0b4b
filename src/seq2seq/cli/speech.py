"""The command line of speech recognition: `train --task speech`, `transcribe`, and `evaluate` of a speech model."""

from __future__ import annotations

import argparse
import json

from seq2seq import api
from seq2seq.cli import flags
from seq2seq.cli.output import write_output
from seq2seq.data.audio import load_frames
from seq2seq.data.pairs import Pair
from seq2seq.tasks.transcribing import Transcribing


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The `transcribe` subcommand."""
    parser = commands.add_parser(
        "transcribe", help="transcribe 16 kHz mono WAV files with a speech model (train --task speech)",
        description="Write one line per WAV file, in order: its transcript (with --n-best or --num-samples N, N "
                    "lines per file).")
    parser.add_argument("--model", required=True, help="run directory or checkpoint file of a speech model, or its "
                                                       "export (seq2seq export)")
    parser.add_argument("files", nargs="+", metavar="FILE.wav", help="16 kHz mono WAV files")
    parser.add_argument("--output", help="output file (default: stdout)")
    parser.add_argument("--scores", action="store_true", help="prefix each transcript with its log-probability and a "
                                                              "TAB")
    flags.add_decoding(parser)
    flags.add_precision(parser)


def run_transcribe(args: argparse.Namespace) -> int:
    options = flags.decoding_options(args)
    transcriber = api.load_transcriber(args.model, precision=args.precision)
    frames = [load_frames(path, transcriber.config.data.audio) for path in args.files]
    results = transcriber.decode_frames(frames, options, args.batch_size)
    text = "".join((f"{hypothesis.log_prob:.4f}\t" if args.scores else "") + transcriber.text(hypothesis) + "\n"
                   for found in results for hypothesis in found)
    write_output(args.output, text)
    return 0


def evaluate(args: argparse.Namespace, transcriber: Transcribing, pairs: list[Pair]) -> int:
    """evaluate on a speech model: CER, WER and exact match of the transcripts of the pairs' WAV files."""
    return print_scores(transcriber.evaluate(pairs, args.batch_size, flags.decoding_options(args)), args.json)


def print_scores(scores: dict[str, float], as_json: bool) -> int:
    """CER, WER and exact match in percent, as one line (or one JSON object)."""
    if as_json:
        print(json.dumps({key: round(value, 4) for key, value in scores.items()}))
    else:
        print(f"CER = {scores['cer']:.2f}%   WER = {scores['wer']:.2f}%   exact match = {scores['exact_match']:.2f}%")
    return 0
