"""The command line of translation models (summarization and chat models too): `translate`, `summarize`, and
`evaluate` of any model."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from seq2seq import api
from seq2seq.cli import flags
from seq2seq.cli.output import write_output
from seq2seq.data.pairs import Pair, read_lines
from seq2seq.errors import Seq2SeqError
from seq2seq.evaluation import reports
from seq2seq.utils import plot

MODEL_HELP = ("run directory or checkpoint file; several make an ensemble that averages their next-token "
              "probabilities (trained with the same tokenizers and vocabularies)")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """translate, summarize and evaluate."""
    _add_translate(commands, "translate", "translate lines of text with a trained model",
                   "Read one input per line; write one output per line.")
    _add_translate(commands, "summarize", "summarize texts with a trained model",
                   "Read one text per line; write one summary per line. Without --max-length a summary may be as "
                   "long as 99%% of the model's training summaries.")
    evaluate = commands.add_parser("evaluate", help="score a trained model on paired data",
                                   description="BLEU, chrF, exact match, WER, CER, ROUGE and perplexity.")
    evaluate.add_argument("--model", required=True, nargs="+", help=MODEL_HELP)
    evaluate.add_argument("--data", required=True, help="pairs: FILE.tsv, FILE.jsonl, SRC,TGT or a named source; "
                                                        "for a language model: a text file or folder")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--confusion", metavar="PNG", help="a classifier: draw its confusion matrix into PNG")
    evaluate.add_argument("--dynamic", action="store_true",
                          help="a language model: dynamic evaluation, learning from each segment of the text after "
                               "scoring it (the files on disk stay as they are; see the adapting flags)")
    flags.add_decoding(evaluate)
    flags.add_adaptation(evaluate)
    flags.add_precision(evaluate)


def _add_translate(commands: argparse._SubParsersAction, name: str, summary: str, description: str) -> None:
    translate = commands.add_parser(name, help=summary, description=description)
    translate.add_argument("--model", required=True, nargs="+", help=MODEL_HELP)
    translate.add_argument("--input", help="input file (default: stdin)")
    translate.add_argument("--output", help="output file (default: stdout)")
    flags.add_decoding(translate)
    flags.add_precision(translate)
    translate.add_argument("--scores", action="store_true",
                           help="prefix each output with its log-probability and a TAB")
    translate.add_argument("--plot-attention", metavar="DIR",
                           help="write a heatmap of the attention weights for each input: DIR/0001.png, ... "
                                "(needs matplotlib)")


def run_translate(args: argparse.Namespace) -> int:
    """translate, and summarize: the same with the output length limited by the training summaries."""
    options = flags.decoding_options(args)
    translator = api.load_translator(args.model, precision=args.precision)
    if args.command == "summarize" and not options.max_length:
        options = dataclasses.replace(options, max_length=translator.summary_length())
    if args.plot_attention:
        _check_plottable(translator)
    source = read_lines(args.input) if args.input else enumerate(sys.stdin.read().splitlines(), start=1)
    lines = [text for _, text in source]
    results = translator.translate_detailed(lines, options, batch_size=args.batch_size)
    if args.plot_attention:
        _plot_attention(results, Path(args.plot_attention))
    text = "".join(_output_line(translation, args.scores) for found in results for translation in found)
    write_output(args.output, text)
    return 0


def _output_line(translation: api.Translation, scores: bool) -> str:
    return f"{translation.log_prob:.4f}\t{translation.text}\n" if scores else translation.text + "\n"


def _check_plottable(translator: api.Translator) -> None:
    """Fail before decoding: the model must attend and matplotlib must be there."""
    if not translator.attends():
        raise Seq2SeqError(f"--plot-attention: this model (arch {translator.config.model.arch}) has no attention")
    plot.figure_class()


def _plot_attention(results: list[list[api.Translation]], folder: Path) -> None:
    """One heatmap per input (its first output), numbered from 1 like the input lines."""
    width = max(4, len(str(len(results))))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for number, found in enumerate(results, start=1):
            best = found[0]
            assert best.attention is not None
            plot.save_attention(best.attention, best.src_tokens, best.tokens, folder / f"{number:0{width}d}.png")
    except OSError as error:
        raise Seq2SeqError(f"{folder}: cannot write attention plots: {error.strerror}") from error


def evaluate(args: argparse.Namespace, translator: api.Translator, pairs: list[Pair]) -> int:
    """evaluate on a translation model: the scores of its outputs for the pairs' sources (`reports.score_lines`)."""
    scores = translator.evaluate(pairs, batch_size=args.batch_size, options=flags.decoding_options(args))
    if args.json:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}))
    else:
        _print_scores(scores)
    return 0


def _print_scores(scores: dict[str, float | str]) -> None:
    print("\n".join(reports.score_lines(scores)))


def report(translator: api.Translator, pairs: list[Pair], samples: int = 10) -> None:
    """Print sample outputs and the scores on held-out pairs that matter for the task (`reports.task_kind`)."""
    head = pairs[:: max(1, len(pairs) // samples)][:samples]
    for pair, output in zip(head, translator.translate([p.src for p in head]), strict=True):
        mark = "ok" if output == pair.tgt else "  "
        print(f"{mark} {pair.src} -> {output}   (reference: {pair.tgt})")
    print("\n".join(reports.focused_lines(translator.evaluate(pairs), translator.config)))
