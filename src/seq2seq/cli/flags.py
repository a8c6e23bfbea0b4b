"""Flags made from the dataclasses that hold their defaults: decoding (DecodingOptions), precision, adaptation
(Adaptation), and any dataclass of settings (`max_batch` -> --max-batch)."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from seq2seq.config import CHOICES
from seq2seq.decoding.options import BATCH_SIZE, KNOB_STRATEGY, STRATEGIES, DecodingOptions, with_knobs
from seq2seq.errors import ConfigError
from seq2seq.evaluation.adaptation import RULES, Adaptation

ADAPT = "adapt_"  # the prefix of the adaptation flags


def add_precision(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=CHOICES["precision"],
                        help="autocast while decoding; fp32 gives the same outputs whatever the batch (default: the "
                             "precision the model was trained with; fp32 for language models)")


FLAG_ALIASES = {"no_repeat_ngram_size": ("--no-repeat-ngram",), "num_samples": ("--num",)}


def add_decoding(parser: argparse.ArgumentParser, defaults: DecodingOptions | None = None,
                  flags_of: dict[str, dict[str, Any]] | None = None) -> None:
    """--batch-size, and a flag for each DecodingOptions field (`beam_size` -> --beam-size), grouped by strategy;
    flags_of replaces the add_argument settings of some (by field name)."""
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"inputs per batch (default {BATCH_SIZE})")
    groups = {strategy: parser.add_argument_group(f"{strategy} (--strategy {strategy})") for strategy in STRATEGIES}
    types = typing.get_type_hints(DecodingOptions)
    for knob in dataclasses.fields(DecodingOptions):
        flags = ("--" + knob.name.replace("_", "-"), *FLAG_ALIASES.get(knob.name, ()))
        group = groups.get(KNOB_STRATEGY.get(knob.name, ""), parser)
        default = getattr(defaults, knob.name) if defaults else knob.default
        help_text = knob.metadata["help"] + (f" (here {default})" if default != knob.default else "")
        if types[knob.name] is bool:
            group.add_argument(*flags, dest=knob.name, action="store_true", default=argparse.SUPPRESS, help=help_text)
            continue
        value_type = next(t for t in typing.get_args(types[knob.name]) or (types[knob.name],) if t is not type(None))
        settings = {"type": value_type, "metavar": knob.metadata["metavar"],
                    "choices": STRATEGIES if knob.name == "strategy" else None, **(flags_of or {}).get(knob.name, {})}
        group.add_argument(*flags, dest=knob.name, default=argparse.SUPPRESS, help=help_text, **settings)
    parser.set_defaults(decoding_defaults=defaults or DecodingOptions())


def decoding_knobs(args: argparse.Namespace) -> dict[str, Any]:
    """The decoding flags given on the command line, by DecodingOptions field name."""
    return {knob.name: getattr(args, knob.name) for knob in dataclasses.fields(DecodingOptions)
            if hasattr(args, knob.name)}


def decoding_options(args: argparse.Namespace) -> DecodingOptions:
    """The command's defaults with the decoding flags given; a flag of another strategy is a one-line ConfigError."""
    return with_knobs(args.decoding_defaults, decoding_knobs(args))


def add_field_flags(parser: argparse.ArgumentParser, settings: type[Any], prefix: str = "") -> None:
    """A flag for each plain field of a settings dataclass, with its type, default and help (field metadata); the
    fields are numbers (a bool or an optional field would need a flag of another kind). A prefix goes before each
    name (`adapt_` + `lr` -> --adapt-lr)."""
    types = typing.get_type_hints(settings)
    for knob in dataclasses.fields(settings):
        if "help" in knob.metadata:
            if types[knob.name] not in (int, float):
                raise TypeError(f"{settings.__name__}.{knob.name}: a flag reads int or float, not {types[knob.name]}")
            parser.add_argument("--" + (prefix + knob.name).replace("_", "-"), type=types[knob.name],
                                default=knob.default, help=f"{knob.metadata['help']} (default {knob.default})")


def from_flags(settings: type[Any], args: argparse.Namespace, prefix: str = "", **given: Any) -> Any:
    """The settings dataclass with the values of its flags (add_field_flags with the same prefix) and the given
    fields."""
    return settings(**{knob.name: getattr(args, prefix + knob.name) for knob in dataclasses.fields(settings)
                       if "help" in knob.metadata}, **given)


def add_adaptation(parser: argparse.ArgumentParser) -> None:
    """The settings of a language model that adapts as it reads: --adapt-lr, --adapt-decay, --adapt-segment and
    --adapt-rule (Adaptation)."""
    group = parser.add_argument_group("adapting (a language model learns from the text as it reads it)")
    add_field_flags(group, Adaptation, ADAPT)  # type: ignore[arg-type]
    group.add_argument("--adapt-rule", choices=RULES, default=Adaptation.rule,
                       help=f"update: rms (gradients over their running root mean square) or sgd "
                            f"(default {Adaptation.rule})")


def adaptation(args: argparse.Namespace, switch: str) -> Adaptation | None:
    """The Adaptation of the flags of add_adaptation when the switch (--dynamic, --adapt) is on, else None; adapting
    flags without the switch are a one-line ConfigError rather than ignored."""
    settings: Adaptation = from_flags(Adaptation, args, ADAPT, rule=args.adapt_rule)
    if getattr(args, switch.lstrip("-")):
        return settings
    if settings != Adaptation():
        raise ConfigError(f"the adapting flags (--adapt-lr, --adapt-decay, --adapt-segment, --adapt-rule) apply "
                          f"with {switch} only")
    return None


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """--config, the token flags, and key=value overrides, which may stand anywhere among the flags."""
    parser.add_argument("--config", help="YAML config file")
    for flag, keys in (("--tokens", "data.src.kind and data.tgt.kind"), ("--src-tokens", "data.src.kind"),
                       ("--tgt-tokens", "data.tgt.kind")):
        parser.add_argument(flag, choices=CHOICES["kind"], help=f"tokens: {keys}")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.lr=5e-4")


def token_overrides(args: argparse.Namespace) -> list[str]:
    """The token flags as key=value overrides (--src-tokens and --tgt-tokens before --tokens)."""
    kinds = {side: getattr(args, f"{side}_tokens") or args.tokens for side in ("src", "tgt")}
    return [f"data.{side}.kind={kind}" for side, kind in kinds.items() if kind]


def parse_intermixed(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse a command line of subcommands, the subcommand's flags and positionals (key=value) in any order.

    argparse cannot intermix with subparsers, so the subcommand is read first and its own parser reads the rest
    (the top-level parser has no flags of its own but --help); the namespace keeps argv (for the ranks that
    `train --nproc` starts). argparse has no public way to reach the subparsers: `_actions` is where they are.
    """
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    if argv and argv[0] in commands.choices:
        namespace = argparse.Namespace(**{commands.dest: argv[0]})
        args = commands.choices[argv[0]].parse_intermixed_args(argv[1:], namespace)
    else:
        args = parser.parse_args(argv)
    args.argv = argv
    return args
