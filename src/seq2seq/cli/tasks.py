"""The command line's part of each task, found by the command that uses its models (`registry.Task.command`): the
scores printed after `train --test`, and `evaluate`. A task without a part here prints its scores as JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from seq2seq import api
from seq2seq.cli import classify, flags, generate, speech, translate
from seq2seq.errors import Seq2SeqError
from seq2seq.tasks import registry

Report = Callable[[Any, list[Any]], object]
Evaluate = Callable[[argparse.Namespace, Any, list[Any]], int]

REPORTS: dict[str, Report] = {
    "translate": translate.report,
    "generate": lambda model, items: generate.print_text_scores(model.evaluate(items), as_json=False),
    "classify": lambda model, items: classify.print_scores(model.evaluate(items), as_json=False),
    "transcribe": lambda model, items: speech.print_scores(model.evaluate(items), as_json=False),
}
"""What `train --test` prints of a trained model's scores on the test items, by the command of its task."""

EVALUATES: dict[str, Evaluate] = {"translate": translate.evaluate, "generate": generate.evaluate,
                                  "classify": classify.evaluate, "transcribe": speech.evaluate}
"""`evaluate` of a model on the items of --data, by the command of its task."""


def report(task: registry.Task, model: Any, items: list[Any]) -> None:
    """Print the model's scores on held-out items as its task's command line does."""
    REPORTS.get(task.command, _print_scores)(model, items)


def run_evaluate(args: argparse.Namespace) -> int:
    """`evaluate`: score a model of any task on --data (read as its task reads data)."""
    model = api.load(args.model, precision=args.precision)
    task = registry.of_model(model)
    evaluate = EVALUATES.get(task.command, _evaluate_scores)
    if args.confusion and evaluate is not classify.evaluate:
        raise Seq2SeqError("--confusion applies to classifiers (train --task classify) only")
    if flags.adaptation(args, "--dynamic") and evaluate is not generate.evaluate:
        raise Seq2SeqError("--dynamic applies to language models (train --task lm) only")
    return evaluate(args, model, task.read(model.config, args.data))


def _evaluate_scores(args: argparse.Namespace, model: Any, items: list[Any]) -> int:
    """evaluate of a task without a part here: its scores as one JSON object; no decoding flags."""
    given = sorted(flags.decoding_knobs(args))
    if given:
        raise Seq2SeqError(f"decoding flags do not apply to this model (given: {', '.join(given)})")
    _print_scores(model, items)
    return 0


def _print_scores(model: Any, items: list[Any]) -> None:
    scores = model.evaluate(items)
    print(json.dumps({key: round(value, 4) if isinstance(value, float) else value for key, value in scores.items()}))
