"""The command line of language models: `seq2seq generate`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from seq2seq import api
from seq2seq.cli import flags
from seq2seq.cli.experiments import TEMPERATURE_FLAG, temperature_sweep
from seq2seq.decoding.options import GENERATION_DEFAULTS, DecodingOptions
from seq2seq.errors import Seq2SeqError


def add_parser(commands: argparse._SubParsersAction) -> None:
    generate = commands.add_parser(
        "generate", help="write text with a language model (train --task lm)",
        description="Continue a prompt in the style of the training text, one token at a time: by default sampled "
                    "at temperature 1 (below 1 safer, above 1 wilder; 0 = greedy), 200 tokens after the prompt. "
                    "With --num-samples (or --num), the texts are separated by lines holding %%. A comma list of "
                    "temperatures (--temperature 0.2,0.5,1) writes one group of texts per temperature, each after a "
                    "line '# temperature T'.")
    generate.add_argument("--model", required=True, help="run directory, checkpoint file or export (seq2seq export) "
                                                          "of a language model")
    generate.add_argument("--prompt", default="", help="the start of the text (default: none, a new entry)")
    generate.add_argument("--stop-at-end", action="store_true",
                          help="end a text early where the model ends an entry (</s>)")
    generate.add_argument("--stream", action="store_true",
                          help="write the text as it is produced, token by token (one text: not with --num)")
    generate.add_argument("--adapt", action="store_true",
                          help="learn from the prompt before writing, as evaluate --dynamic learns from a text (see "
                               "the adapting flags)")
    flags.add_decoding(generate, GENERATION_DEFAULTS, {"temperature": TEMPERATURE_FLAG})
    flags.add_precision(generate)
    flags.add_adaptation(generate)


def run_generate(args: argparse.Namespace) -> int:
    generator = api.load_generator(args.model, precision=args.precision)
    adaptation = flags.adaptation(args, "--adapt")
    if adaptation is not None:
        generator = generator.adapted_to(args.prompt, adaptation)
    for header, options in temperature_sweep(args.decoding_defaults, flags.decoding_knobs(args)):
        if args.stream:
            _stream_text(generator, args.prompt, options, args.stop_at_end, header)
            continue
        texts = generator.generate(args.prompt, options, stop_at_end=args.stop_at_end)
        sys.stdout.write(header + "%\n".join(text + "\n" for text in texts))
    return 0


def _stream_text(generator: Any, prompt: str, options: DecodingOptions, stop_at_end: bool, header: str) -> None:
    """Write the prompt (as generate writes it back), then each piece of the text as soon as it is produced."""
    pieces = generator.stream(prompt, options, stop_at_end=stop_at_end)  # checks the options before any output
    sys.stdout.write(header + generator.tokenizer.detokenize(generator.tokenizer.tokenize(prompt)))
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


def evaluate(args: argparse.Namespace, generator: Any, entries: list[str]) -> int:
    """evaluate on a language model: cross-entropy, perplexity and bits per character of the text entries."""
    given = sorted(flags.decoding_knobs(args))
    if given:
        raise Seq2SeqError("decoding flags do not apply to a language model, which is scored on the text itself "
                           f"(given: {', '.join(given)})")
    return print_text_scores(generator.evaluate(entries, flags.adaptation(args, "--dynamic")), args.json)


def print_text_scores(scores: dict[str, float], as_json: bool) -> int:
    if as_json:
        print(json.dumps({key: round(value, 4) for key, value in scores.items()}))
    else:
        print(f"cross-entropy = {scores['cross_entropy']:.4f} nats/token   perplexity = {scores['perplexity']:.3f}   "
              f"bits per character = {scores['bpc']:.4f}")
    return 0
