"""Command line: thin argparse subcommands over the Python API."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from seq2seq import api, chat, checkpoint, plot, runtime
from seq2seq.config import Config, apply_overrides, load_config
from seq2seq.data import Pair, read_lines
from seq2seq.datasets import load_pairs
from seq2seq.decoding import STRATEGIES, DecodingOptions
from seq2seq.errors import Seq2SeqError
from seq2seq.generation import TextGenerator, load_generator, train_language_model
from seq2seq.text import read_entries

logger = logging.getLogger("seq2seq")

TRAIN_EXAMPLES = """examples:
  seq2seq train --train cmudict:train --dev cmudict:dev --out runs/g2p --config configs/g2p.yaml --max-time 300
  seq2seq train --train fra.txt --out runs/fr --tokens word data.src.language=en data.tgt.language=fr
  seq2seq train --out runs/fr --resume
  seq2seq train --task lm --train fortunes.txt --out runs/fortunes --config configs/charlm.yaml data.entries=delimiter
"""


class OneLineParser(argparse.ArgumentParser):
    """Reports a bad flag or value as one line instead of usage + message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


MODEL_HELP = ("run directory or checkpoint file; several make an ensemble that averages their next-token "
              "probabilities (trained with the same tokenizers and vocabularies)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="seq2seq", description="Train, use and evaluate RNN sequence-to-sequence models.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    _add_train(commands)
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
    _add_decoding(evaluate)
    _add_generate(commands)
    _add_chat(commands)
    return parser


def _add_translate(commands: argparse._SubParsersAction, name: str, summary: str, description: str) -> None:
    translate = commands.add_parser(name, help=summary, description=description)
    translate.add_argument("--model", required=True, nargs="+", help=MODEL_HELP)
    translate.add_argument("--input", help="input file (default: stdin)")
    translate.add_argument("--output", help="output file (default: stdout)")
    _add_decoding(translate)
    translate.add_argument("--scores", action="store_true",
                           help="prefix each output with its log-probability and a TAB")
    translate.add_argument("--plot-attention", metavar="DIR",
                           help="write a heatmap of the attention weights for each input: DIR/0001.png, ... "
                                "(needs matplotlib)")


def _add_train(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train", help="train a model", epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a seq2seq model. Data: FILE.tsv (src<TAB>tgt[<TAB>...]), FILE.jsonl ({src, tgt}), "
                    "SRC_FILE,TGT_FILE (aligned lines), or a named source: cmudict:train|dev|test, anki:fra-eng.")
    train.add_argument("--train", help="training pairs (required unless --resume)")
    train.add_argument("--dev", help="dev pairs, for early stopping and the best checkpoint")
    train.add_argument("--test", help="held-out pairs scored (with sample outputs) after training")
    train.add_argument("--out", required=True, help="run directory for checkpoints and metrics.jsonl")
    train.add_argument("--task", choices=("seq2seq", "lm"), help="task: seq2seq (pairs, the default) or lm (a "
                       "language model on plain text: a file or a folder; entries as data.entries says)")
    train.add_argument("--config", help="YAML config file")
    train.add_argument("--arch", choices=("context", "repeat", "attention"), help="model.arch")
    train.add_argument("--rnn", choices=("lstm", "gru"), help="model.rnn")
    train.add_argument("--tokens", choices=("char", "word", "subword"), help="tokens on both sides")
    train.add_argument("--src-tokens", choices=("char", "word", "subword"), help="source tokens")
    train.add_argument("--tgt-tokens", choices=("char", "word", "subword"), help="target tokens")
    train.add_argument("--max-time", type=float, help="seconds of wall time for the whole command")
    train.add_argument("--epochs", type=int, help="train.epochs")
    train.add_argument("--resume", action="store_true", help="continue exactly from the last checkpoint in --out")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.lr=5e-4")


def _add_decoding(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per batch (default 64)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="greedy", help="how outputs are chosen")
    parser.add_argument("--max-length", type=int, default=0,
                        help="most output tokens, </s> included (default: 1.5 x source length + 20)")
    parser.add_argument("--min-length", type=int, default=0, help="fewest output tokens before </s>")
    parser.add_argument("--no-repeat-ngram", type=int, default=0, metavar="N", help="no N-gram twice in an output")
    parser.add_argument("--ban-unk", action="store_true", help="never output <unk>")
    beam = parser.add_argument_group("beam search (--strategy beam)")
    beam.add_argument("--beam-size", type=int, metavar="K", help="live hypotheses per input (default 5)")
    beam.add_argument("--length-penalty", type=float, metavar="A",
                      help="rank by log p / ((5 + length) / 6) ** A (default 1; 0: by log p)")
    beam.add_argument("--n-best", type=int, metavar="N", help="outputs per input, best first (default 1)")
    sampling = parser.add_argument_group("sampling (--strategy sample)")
    sampling.add_argument("--temperature", type=float, metavar="T", help="divide the logits by T (default 1)")
    sampling.add_argument("--top-k", type=int, metavar="K", help="draw from the K most likely tokens only")
    sampling.add_argument("--top-p", type=float, metavar="P", help="draw from the nucleus of probability P only")
    sampling.add_argument("--num-samples", type=int, metavar="N", help="outputs per input (default 1)")
    sampling.add_argument("--seed", type=int, help="seed of the random draws (same seed, same outputs)")


def decoding_options(args: argparse.Namespace) -> DecodingOptions:
    """The decoding flags as options; a flag of another strategy is a one-line ConfigError."""
    return DecodingOptions(
        strategy=args.strategy, max_length=args.max_length, min_length=args.min_length,
        no_repeat_ngram_size=args.no_repeat_ngram, ban_unk=args.ban_unk, beam_size=args.beam_size,
        length_penalty=args.length_penalty, n_best=args.n_best, temperature=args.temperature, top_k=args.top_k,
        top_p=args.top_p, num_samples=args.num_samples, seed=args.seed)


def main(argv: Sequence[str] | None = None) -> int:
    runtime.configure_process()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        commands = {"train": run_train, "translate": run_translate, "summarize": run_translate,
                    "evaluate": run_evaluate, "generate": run_generate, "chat": run_chat}
        return commands[args.command](args)
    except Seq2SeqError as error:
        print(f"seq2seq {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"seq2seq {args.command}: interrupted", file=sys.stderr)
        return 130


def train_config(args: argparse.Namespace) -> Config:
    """The config from --config (or the saved run's with --resume), the named flags and key=value overrides."""
    if args.resume and args.config:
        raise Seq2SeqError("--resume continues with the saved config; change train.* values with key=value instead")
    if args.resume:
        config = api.saved_config(args.out)
    elif args.config:
        config = load_config(args.config)
    else:
        config = Config()
    flags = [("task", args.task), ("model.arch", args.arch), ("model.rnn", args.rnn),
             ("train.max_time", args.max_time), ("train.epochs", args.epochs)]
    for side in ("src", "tgt"):
        flags.append((f"data.{side}.kind", getattr(args, f"{side}_tokens") or args.tokens))
    apply_overrides(config, [f"{key}={value}" for key, value in flags if value is not None])
    return apply_overrides(config, args.overrides)


def run_train(args: argparse.Namespace) -> int:
    if not args.train and not args.resume:
        raise Seq2SeqError("--train is required (or --resume to continue a run)")
    config = train_config(args)
    if config.task == "lm":
        return _train_language_model(args, config)
    if args.resume and not args.train:
        raise Seq2SeqError("--resume needs the same --train data as the run it continues")
    dev_pairs = load_pairs(args.dev) if args.dev else []
    # handed over without a reference kept here, so that the texts are freed once they are encoded
    translator = api.train(config, load_pairs(args.train), dev_pairs, args.out, resume=args.resume)
    if args.test:
        _report(translator, load_pairs(args.test))
    print(f"model saved in {args.out}; try: seq2seq translate --model {args.out}")
    return 0


def _report(translator: api.Translator, pairs: list[Pair], samples: int = 10) -> None:
    """Print sample outputs and the scores on held-out pairs."""
    head = pairs[:: max(1, len(pairs) // samples)][:samples]
    for pair, output in zip(head, translator.translate([p.src for p in head]), strict=True):
        mark = "ok" if output == pair.tgt else "  "
        print(f"{mark} {pair.src} -> {output}   (reference: {pair.tgt})")
    _print_scores(translator.evaluate(pairs))


def _print_scores(scores: dict[str, float | str]) -> None:
    print(f"BLEU = {scores['bleu']:.2f}  ({scores['bleu_signature']})")
    print(f"chrF = {scores['chrf']:.2f}  ({scores['chrf_signature']})")
    print(f"exact match = {scores['exact_match']:.2f}%   WER = {scores['wer']:.2f}%   CER = {scores['cer']:.2f}%   "
          f"perplexity = {scores['perplexity']:.3f}")
    print(f"ROUGE-1 = {scores['rouge1']:.2f}   ROUGE-2 = {scores['rouge2']:.2f}   ROUGE-L = {scores['rougeL']:.2f}   "
          f"distinct-1 = {scores['distinct1']:.2f}   distinct-2 = {scores['distinct2']:.2f}")


def run_translate(args: argparse.Namespace) -> int:
    """translate, and summarize: the same with the output length limited by the training summaries."""
    options = decoding_options(args)
    translator = api.load_translator(args.model)
    if args.command == "summarize" and not args.max_length:
        options = dataclasses.replace(options, max_length=translator.summary_length())
    if args.plot_attention:
        _check_plottable(translator)
    source = read_lines(args.input) if args.input else enumerate(sys.stdin.read().splitlines(), start=1)
    lines = [text for _, text in source]
    results = translator.translate_detailed(lines, options, batch_size=args.batch_size)
    if args.plot_attention:
        _plot_attention(results, Path(args.plot_attention))
    text = "".join(_output_line(translation, args.scores) for found in results for translation in found)
    if args.output:
        _write_atomically(Path(args.output), text)
    else:
        sys.stdout.write(text)
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


def run_evaluate(args: argparse.Namespace) -> int:
    options = decoding_options(args)
    translator = api.load(args.model)
    if isinstance(translator, TextGenerator):
        return _print_text_scores(translator.evaluate(translator.read(args.data)), args.json)
    scores = translator.evaluate(load_pairs(args.data), batch_size=args.batch_size, options=options)
    if args.json:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}))
    else:
        _print_scores(scores)
    return 0


def _train_language_model(args: argparse.Namespace, config: Config) -> int:
    """train --task lm: --train, --dev and --test are text files or folders, split into entries by data.entries."""
    if not args.train:
        raise Seq2SeqError("--resume needs the same --train text as the run it continues")
    data = config.data
    dev = read_entries(args.dev, data.entries, data.entry_delimiter) if args.dev else []
    generator = train_language_model(config, read_entries(args.train, data.entries, data.entry_delimiter), dev,
                                     args.out, resume=args.resume)
    if args.test:
        _print_text_scores(generator.evaluate(generator.read(args.test)), as_json=False)
    print(f"model saved in {args.out}; try: seq2seq generate --model {args.out} --temperature 0.5")
    return 0


def _print_text_scores(scores: dict[str, float], as_json: bool) -> int:
    if as_json:
        print(json.dumps({key: round(value, 4) for key, value in scores.items()}))
    else:
        print(f"cross-entropy = {scores['cross_entropy']:.4f} nats/token   perplexity = {scores['perplexity']:.3f}   "
              f"bits per character = {scores['bpc']:.4f}")
    return 0


def _add_generate(commands: argparse._SubParsersAction) -> None:
    generate = commands.add_parser(
        "generate", help="write text with a language model (train --task lm)",
        description="Continue a prompt in the style of the training text, one token at a time. With --num, the "
                    "texts are separated by lines holding %.")
    generate.add_argument("--model", required=True, help="run directory or checkpoint file of a language model")
    generate.add_argument("--prompt", default="", help="the start of the text (default: none, a new entry)")
    generate.add_argument("--temperature", type=float, default=1.0,
                          help="below 1 safer, above 1 wilder; 0 = greedy, always the most likely (default 1)")
    generate.add_argument("--top-k", type=int, help="draw only from the k most likely tokens")
    generate.add_argument("--top-p", type=float, help="draw only from the most likely tokens holding probability p")
    generate.add_argument("--max-length", type=int, default=200, help="tokens written after the prompt (default 200)")
    generate.add_argument("--num", type=int, default=1, help="how many texts (default 1)")
    generate.add_argument("--seed", type=int, help="seed of the random draws: same seed, same texts")
    generate.add_argument("--stop-at-end", action="store_true",
                          help="end a text early where the model ends an entry (</s>)")


def run_generate(args: argparse.Namespace) -> int:
    generator = load_generator(args.model)
    texts = generator.generate(args.prompt, args.num, args.temperature, args.top_k, args.top_p, args.max_length,
                               args.seed, args.stop_at_end)
    sys.stdout.write("%\n".join(text + "\n" for text in texts))
    return 0


def _add_chat(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "chat", help="talk with a model trained on conversations",
        description="A conversation in the terminal: type a message, read the reply; /reset clears the history, "
                    "/quit or Ctrl-D ends. With --message, print the reply to one message and exit.")
    parser.add_argument("--model", required=True, help="run directory or checkpoint file")
    parser.add_argument("--history", type=int, default=0, metavar="K",
                        help="give the model the last K turns (messages and replies) before each message, joined "
                             "by ' | ', as in training data read with history=K (default 0)")
    parser.add_argument("--message", help="reply to this message only (for scripts)")
    _add_decoding(parser)


def run_chat(args: argparse.Namespace) -> int:
    options = decoding_options(args)
    chatbot = chat.Chatbot(api.load_translator(args.model), args.history, options)
    if args.message is None:
        chat.repl(chatbot, sys.stdin, sys.stdout)
    else:
        print(chatbot.reply(args.message))
    return 0


def _write_atomically(path: Path, text: str) -> None:
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    except OSError as error:
        raise Seq2SeqError(f"{path}: cannot write: {error.strerror}") from error
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o666 & ~checkpoint._umask())  # mkstemp makes 0600 files
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


if __name__ == "__main__":
    sys.exit(main())
