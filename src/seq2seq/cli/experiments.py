"""The command line of experiments: `compare` (variants of a config under one time budget), `plot` (training
curves of runs), and generate's temperature sweeps."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from seq2seq.config import Config, apply_overrides, load_config
from seq2seq.decoding.options import DecodingOptions, generation_options
from seq2seq.experiments import compare, curves
from seq2seq.tasks import registry

COMPARE_EXAMPLES = """examples:
  seq2seq compare --train cmudict:train --dev cmudict:dev --out runs/rnn --max-time 600 --config configs/g2p.yaml \\
      model.rnn=lstm model.rnn=gru
  seq2seq compare --train fra.tsv --dev dev.tsv --out runs/att --max-time 900 --set data.src.kind=word \\
      model.attention=dot model.attention=general model.attention=bahdanau
  seq2seq compare ... "model.rnn=gru model.hidden_size=512" "model.rnn=lstm,model.hidden_size=384"
"""


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """The `compare` and `plot` subcommands."""
    _add_compare(commands)
    parser = commands.add_parser(
        "plot", help="draw training curves of runs (needs matplotlib)",
        description="Draw the metrics of each run's metrics.jsonl (training and dev loss, perplexity, the dev metric, "
                    "learning rate, tokens/s) against updates or training time: one panel per metric, one curve per "
                    "run (and split), labelled by the run directory's name.")
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (holding metrics.jsonl)")
    parser.add_argument("--metric", help="draw this metric only (e.g. loss, bleu, lr; default: every metric)")
    parser.add_argument("--x", choices=tuple(curves.X_KEYS), default="steps",
                        help="against updates (steps, the default) or training time in seconds (time)")
    parser.add_argument("--out", required=True, metavar="PNG", help="the PNG file to write")


def _add_compare(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "compare", help="train variants of a config under the same time budget and compare them",
        epilog=COMPARE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train one model per VARIANT (config overrides) into OUT/NAME, one after another, not side by "
                    "side: runs sharing the cores would slow each other and distort their tokens/s. Each gets "
                    "--max-time seconds (set train.epochs=0 for the budget alone to stop them). Then one table "
                    "(printed, OUT/compare.md, OUT/compare.json): parameters, updates, target tokens/s, best dev "
                    "loss, the task's scores on --test (else --dev) as seq2seq evaluate gives them, and decoding "
                    "speed; OUT/curves.png: every variant's dev loss against training time (needs matplotlib).")
    parser.add_argument("--train", required=True, help="training data, as for seq2seq train")
    parser.add_argument("--dev", help="dev data: the dev loss and its curve (and the scores without --test)")
    parser.add_argument("--test", help="held-out data scored after training")
    parser.add_argument("--out", required=True, help="folder of the comparison: one run directory per variant")
    parser.add_argument("--max-time", required=True, type=float, help="seconds of training per variant")
    parser.add_argument("--task", choices=registry.names(), help="task (default seq2seq), as for seq2seq train")
    parser.add_argument("--config", help="YAML config file: the base of every variant")
    parser.add_argument("--set", action="append", default=[], metavar="key=value",
                        help="a base override for every variant (repeat for more), e.g. --set train.epochs=0")
    parser.add_argument("variants", nargs="+", metavar="VARIANT",
                        help="key=value overrides separated by spaces or commas, quoted as one argument, e.g. "
                             "'model.rnn=gru model.num_layers=2'; '' is the base config")


def base_config(args: argparse.Namespace) -> Config:
    """--config (or the defaults), then --task and the --set overrides."""
    config = load_config(args.config) if args.config else Config()
    return apply_overrides(config, [f"task={args.task}"] * bool(args.task) + args.set)


def run_compare(args: argparse.Namespace) -> int:
    variants = [compare.parse_variant(text) for text in args.variants]
    table, written = compare.compare(base_config(args), variants, (args.train, args.dev, args.test), Path(args.out),
                                     args.max_time)
    print(table, end="")
    print("written:", ", ".join(map(str, written)))
    return 0


def run_plot(args: argparse.Namespace) -> int:
    series = curves.select([curve for run in args.runs for curve in curves.run_series(run, args.x)], args.metric)
    curves.save_curves(series, args.out, args.x)
    metrics = ", ".join(dict.fromkeys(curve.metric for curve in series))
    print(f"{args.out}: {len(series)} curves of {metrics} from {len(args.runs)} runs")
    return 0


def temperature_list(text: str) -> list[float]:
    """--temperature of generate: one value, or a comma list to sweep (0.2,0.5,1.0)."""
    try:
        return [float(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid temperature {text!r}: a number or a comma list, e.g. 0.5,1.0"
                                         ) from None


TEMPERATURE_FLAG = {"type": temperature_list, "metavar": "T[,T...]"}
"""generate's --temperature: DecodingOptions' knob, read as a list (`temperature_sweep`)."""


def temperature_sweep(defaults: DecodingOptions, knobs: dict[str, Any]) -> list[tuple[str, DecodingOptions]]:
    """generate's options for each temperature of the list in knobs, with the header line that goes before its
    texts ('# temperature T' and a newline; "" for a single value); all checked before any text is written."""
    knobs = dict(knobs)
    temperatures = knobs.pop("temperature", None)
    if temperatures is None:
        return [("", generation_options(defaults, knobs))]
    header = "# temperature {:g}\n" if len(temperatures) > 1 else ""
    return [(header.format(value), generation_options(defaults, {**knobs, "temperature": value}))
            for value in temperatures]
