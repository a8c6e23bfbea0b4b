"""The command line of text classification: `train --task classify`, `classify`, and `evaluate` of a classifier."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seq2seq import api
from seq2seq.cli import flags
from seq2seq.cli.output import write_output
from seq2seq.config import CHOICES
from seq2seq.data.pairs import Pair, read_lines
from seq2seq.decoding.options import BATCH_SIZE
from seq2seq.errors import Seq2SeqError
from seq2seq.evaluation import metrics
from seq2seq.tasks.classification import Classification
from seq2seq.tasks.classify import TextClassifier
from seq2seq.utils import plot


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The `classify` subcommand."""
    parser = commands.add_parser(
        "classify", help="label lines of text with a classifier (train --task classify)",
        description="Read one text per line; write one line per text: its label, or with --top-k K the K most "
                    "likely labels, TAB-separated, best first; --scores puts each label's probability after it.")
    parser.add_argument("--model", required=True,
                        help="run directory or checkpoint file of a classifier, or its export (seq2seq export)")
    parser.add_argument("--input", help="input file (default: stdin)")
    parser.add_argument("--output", help="output file (default: stdout)")
    parser.add_argument("--top-k", type=int, default=1, metavar="K", help="the K most likely labels (default 1)")
    parser.add_argument("--scores", action="store_true", help="write each label's probability after it (TAB)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"texts per batch (default {BATCH_SIZE})")
    parser.add_argument("--precision", choices=CHOICES["precision"],
                        help="autocast while classifying (default: the precision the model was trained with)")
    parser.add_argument("--plot-attention", metavar="DIR",
                        help="write the attention pooling's weights over each text's tokens (which words decided): "
                             "DIR/0001.png, ... (pooling attention only; needs matplotlib)")


def run_classify(args: argparse.Namespace) -> int:
    classifier = api.load_classifier(args.model, precision=args.precision)
    if args.plot_attention and classifier.config.model.pooling != "attention":
        raise Seq2SeqError(f"--plot-attention: this model pools with {classifier.config.model.pooling}, not attention")
    if args.plot_attention:
        plot.figure_class()
    source = read_lines(args.input) if args.input else enumerate(sys.stdin.read().splitlines(), start=1)
    results = classifier.classify_detailed([text for _, text in source], args.top_k, args.batch_size)
    if args.plot_attention:
        _plot_attention(results, Path(args.plot_attention))
    text = "".join(_output_line(found, args.scores) for found in results)
    write_output(args.output, text)
    return 0


def _output_line(found: Classification, scores: bool) -> str:
    fields = [f"{label}\t{probability:.4f}" if scores else label for label, probability in found.top]
    return "\t".join(fields) + "\n"


def _plot_attention(results: Sequence[Classification], folder: Path) -> None:
    """One heatmap per text, numbered from 1 like the input lines: its tokens across, its label down."""
    width = max(4, len(str(len(results))))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for number, found in enumerate(results, start=1):
            assert found.attention is not None
            plot.save_attention(found.attention[None, :], found.tokens or ["<pad>"], [found.label],
                                folder / f"{number:0{width}d}.png")
    except OSError as error:
        raise Seq2SeqError(f"{folder}: cannot write attention plots: {error.strerror}") from error


def evaluate(args: argparse.Namespace, classifier: TextClassifier, pairs: list[Pair]) -> int:
    """evaluate on a classifier: accuracy, macro-F1 and per-class scores; --confusion draws the confusion matrix."""
    given = sorted(flags.decoding_knobs(args))
    if given:
        raise Seq2SeqError(f"decoding flags do not apply to a classifier (given: {', '.join(given)})")
    if args.confusion:
        plot.figure_class()
    references = [pair.tgt for pair in pairs]
    predictions = classifier.classify([pair.src for pair in pairs], args.batch_size)
    if args.confusion:
        labels = classifier.labels + sorted(set(references) - set(classifier.labels))
        try:
            plot.save_confusion(metrics.confusion_matrix(predictions, references, labels), labels, args.confusion)
        except OSError as error:
            raise Seq2SeqError(f"{args.confusion}: cannot write: {error.strerror}") from error
    return print_scores(metrics.classification_scores(predictions, references), args.json)


def print_scores(scores: dict[str, Any], as_json: bool) -> int:
    """Accuracy and macro-F1, then a table of each label's precision, recall, F1 and support (or one JSON object)."""
    if as_json:
        print(json.dumps(_rounded(scores)))
        return 0
    print(f"accuracy = {scores['accuracy']:.2f}%   macro-F1 = {scores['macro_f1']:.2f}")
    width = max(len("label"), *(len(label) for label in scores["per_class"]))
    print(f"{'label':<{width}}  precision  recall      F1  support")
    for label, found in sorted(scores["per_class"].items(), key=lambda item: -item[1]["support"]):
        print(f"{label:<{width}}  {found['precision']:9.2f}  {found['recall']:6.2f}  {found['f1']:6.2f}  "
              f"{found['support']:7d}")
    return 0


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return round(value, 4) if isinstance(value, float) else value
