"""Command line: thin argparse subcommands over the Python API."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from seq2seq import api
from seq2seq.cli import average, chat, classify, export, prepare, speech
from seq2seq.cli.experiments import TEMPERATURE_FLAG, add_parsers, run_compare, run_plot, temperature_sweep
from seq2seq.config import CHOICES, Config, apply_overrides, load_config
from seq2seq.data.datasets import is_prepared, load_pairs
from seq2seq.data.pairs import Pair, read_lines
from seq2seq.data.text import read_entries
from seq2seq.decoding.options import GENERATION_DEFAULTS
from seq2seq.decoding.torch_search import BATCH_SIZE, KNOB_STRATEGY, STRATEGIES, DecodingOptions, with_knobs
from seq2seq.errors import Seq2SeqError
from seq2seq.evaluation import reports
from seq2seq.tasks.chat import Chatbot
from seq2seq.tasks.classify import TextClassifier
from seq2seq.tasks.lm import train_language_model
from seq2seq.tasks.speech import SpeechTranscriber
from seq2seq.training import distributed
from seq2seq.utils import plot, runtime
from seq2seq.utils.device import resolve_device
from seq2seq.utils.files import write_text_atomically

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
    evaluate.add_argument("--confusion", metavar="PNG", help="a classifier: draw its confusion matrix into PNG")
    _add_decoding(evaluate)
    _add_precision(evaluate)
    _add_generate(commands)
    classify.add_parser(commands)
    transcribe = speech.add_parser(commands)
    _add_decoding(transcribe)
    _add_precision(transcribe)
    _add_chat(commands)
    _add_serve(commands)
    export.add_parser(commands)
    prepare.add_parser(commands)
    average.add_parser(commands)
    add_parsers(commands)  # compare, plot
    return parser


def _add_translate(commands: argparse._SubParsersAction, name: str, summary: str, description: str) -> None:
    translate = commands.add_parser(name, help=summary, description=description)
    translate.add_argument("--model", required=True, nargs="+", help=MODEL_HELP)
    translate.add_argument("--input", help="input file (default: stdin)")
    translate.add_argument("--output", help="output file (default: stdout)")
    _add_decoding(translate)
    _add_precision(translate)
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
    train.add_argument("--train", help="training pairs, or a directory written by seq2seq prepare (required unless "
                                       "--resume)")
    train.add_argument("--dev", help="dev pairs, for early stopping and the best checkpoint")
    train.add_argument("--test", help="held-out pairs scored (with sample outputs) after training")
    train.add_argument("--out", required=True, help="run directory for checkpoints and metrics.jsonl")
    train.add_argument("--task", choices=CHOICES["task"], help="task: seq2seq (pairs, the default), lm (a "
                       "language model on plain text: a file or a folder; entries as data.entries says) or "
                       "classify (text<TAB>label TSV or {text, label} JSONL)")
    train.add_argument("--config", help="YAML config file")
    train.add_argument("--arch", choices=("context", "repeat", "attention"), help="model.arch")
    train.add_argument("--rnn", choices=("lstm", "gru"), help="model.rnn")
    train.add_argument("--tokens", choices=("char", "word", "subword"), help="tokens on both sides")
    train.add_argument("--src-tokens", choices=("char", "word", "subword"), help="source tokens")
    train.add_argument("--tgt-tokens", choices=("char", "word", "subword"), help="target tokens")
    train.add_argument("--max-time", type=float, help="seconds of wall time for the whole command")
    train.add_argument("--epochs", type=int, help="train.epochs")
    train.add_argument("--resume", action="store_true", help="continue exactly from the last checkpoint in --out")
    train.add_argument("--nproc", metavar="N|auto", help="train data-parallel in N local processes started by "
                       "torch.distributed.run (each with its share of every batch; auto: one per GPU, or per CPU "
                       "core); see the README's Scale section")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.lr=5e-4")


def _add_precision(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=CHOICES["precision"],
                        help="autocast while decoding; fp32 gives the same outputs whatever the batch (default: the "
                             "precision the model was trained with; fp32 for language models)")


FLAG_ALIASES = {"no_repeat_ngram_size": ("--no-repeat-ngram",), "num_samples": ("--num",)}


def _add_decoding(parser: argparse.ArgumentParser, defaults: DecodingOptions | None = None,
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


def main(argv: Sequence[str] | None = None) -> int:
    runtime.configure_process()
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        commands = {"train": run_train, "translate": run_translate, "summarize": run_translate,
                    "evaluate": run_evaluate, "generate": run_generate, "chat": run_chat,
                    "classify": classify.run_classify, "transcribe": run_transcribe,
                    "serve": run_serve, "export": export.run_export, "prepare": prepare.run_prepare,
                    "average": average.run_average, "compare": run_compare, "plot": run_plot}
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
    if args.nproc and not distributed.launched():
        processes = distributed.process_count(args.nproc, resolve_device(config.train.device))
        if processes > 1:  # the ranks run this command again (they see that torchrun started them)
            distributed.launch(processes, args.argv)
            return 0
    prepared = bool(args.train) and is_prepared(args.train)
    if prepared and config.task != "seq2seq":
        raise Seq2SeqError(f"{args.train}: a prepared directory holds pairs for task seq2seq, not {config.task}")
    if config.task == "lm":
        return _train_language_model(args, config)
    if config.task == "classify":
        return classify.run_train(args, config)
    if config.task == "speech":
        return speech.run_train(args, config)
    if args.resume and not args.train:
        raise Seq2SeqError("--resume needs the same --train data as the run it continues")
    dev_pairs = load_pairs(args.dev) if args.dev else []
    if prepared:  # tokenized by seq2seq prepare: the examples are read from its shards
        translator = api.train_prepared(config, args.train, dev_pairs, args.out, resume=args.resume)
    else:  # handed over without a reference kept here, so that the texts are freed once they are encoded
        translator = api.train(config, load_pairs(args.train), dev_pairs, args.out, resume=args.resume)
    if not distributed.current().main:
        return 0
    if args.test:
        _report(translator, load_pairs(args.test))
    print(f"model saved in {args.out}; try: seq2seq translate --model {args.out}")
    return 0


def _report(translator: api.Translator, pairs: list[Pair], samples: int = 10) -> None:
    """Print sample outputs and the scores on held-out pairs that matter for the task (`reports.task_kind`)."""
    head = pairs[:: max(1, len(pairs) // samples)][:samples]
    for pair, output in zip(head, translator.translate([p.src for p in head]), strict=True):
        mark = "ok" if output == pair.tgt else "  "
        print(f"{mark} {pair.src} -> {output}   (reference: {pair.tgt})")
    print("\n".join(reports.focused_lines(translator.evaluate(pairs), translator.config)))


def _print_scores(scores: dict[str, float | str]) -> None:
    print("\n".join(reports.score_lines(scores)))


def run_translate(args: argparse.Namespace) -> int:
    """translate, and summarize: the same with the output length limited by the training summaries."""
    options = decoding_options(args)
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
    if args.output:
        _write_output(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return 0


def _write_output(path: Path, text: str) -> None:
    try:
        write_text_atomically(path, text)
    except OSError as error:
        raise Seq2SeqError(f"{path}: cannot write: {error.strerror}") from error


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


def run_transcribe(args: argparse.Namespace) -> int:
    return speech.run_transcribe(args, decoding_options(args))


def run_evaluate(args: argparse.Namespace) -> int:
    options = decoding_options(args)
    translator = api.load(args.model, precision=args.precision)
    if isinstance(translator, TextClassifier):
        return classify.run_evaluate(args, translator, sorted(decoding_knobs(args)))
    if args.confusion:
        raise Seq2SeqError("--confusion applies to classifiers (train --task classify) only")
    if isinstance(translator, SpeechTranscriber):
        return speech.run_evaluate(args, translator, options)
    if api.task_of(translator) == "lm":
        given = sorted(decoding_knobs(args))
        if given:
            raise Seq2SeqError("decoding flags do not apply to a language model, which is scored on the text itself "
                               f"(given: {', '.join(given)})")
        data = translator.config.data
        return _print_text_scores(translator.evaluate(read_entries(args.data, data.entries, data.entry_delimiter)),
                                  args.json)
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
    if not distributed.current().main:
        return 0
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
    _add_decoding(generate, GENERATION_DEFAULTS, {"temperature": TEMPERATURE_FLAG})
    _add_precision(generate)


def run_generate(args: argparse.Namespace) -> int:
    generator = api.load_generator(args.model, precision=args.precision)
    for header, options in temperature_sweep(args.decoding_defaults, decoding_knobs(args)):
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
    _add_precision(parser)


def run_chat(args: argparse.Namespace) -> int:
    options = decoding_options(args)
    chatbot = Chatbot(api.load_translator(args.model, precision=args.precision), args.history, options)
    if args.message is None:
        chat.repl(chatbot, sys.stdin, sys.stdout)
    else:
        print(chatbot.reply(args.message))
    return 0


def _add_serve(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve", help="serve models over HTTP: a JSON API and a web page (needs the serve extra)",
        description="An HTTP server (FastAPI + uvicorn; pip install 'seq2seq[serve]'): /v1/translate, /v1/generate, "
                    "/v1/chat, /v1/models, /healthz, /metrics, and a web page at /. Concurrent requests with the "
                    "same model and options are decoded together.")
    parser.add_argument("--model", required=True, action="append", metavar="[NAME=]DIR",
                        help="a run directory or checkpoint (DIR1,DIR2 for an ensemble), or an export of a "
                             "translation or language model (seq2seq export: runs on ONNX Runtime); repeat for more "
                             "models, the first is the default; a model is named after its directory unless NAME= "
                             "is given")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--max-batch", type=int, default=64, help="most sentences per batched decode (default 64)")
    parser.add_argument("--max-wait-ms", type=float, default=5.0,
                        help="how long a request waits for others to batch with (default 5)")
    parser.add_argument("--chat-history", type=int, default=0, metavar="K",
                        help="turns of the conversation given to chat models, as in seq2seq chat --history")
    parser.add_argument("--max-texts", type=int, default=64, help="texts per translate request (default 64)")
    parser.add_argument("--max-chars", type=int, default=1000, help="characters per text (default 1000)")
    parser.add_argument("--max-length", type=int, default=512, help="ceiling of max_length (default 512)")
    parser.add_argument("--max-beam-size", type=int, default=16, help="ceiling of beam_size (default 16)")
    parser.add_argument("--max-body-bytes", type=int, default=1 << 20, help="request body size (default 1 MiB)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    parser.add_argument("--max-in-flight", type=int, default=256,
                        help="requests answered at once; beyond, 429 (default 256)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    _add_precision(parser)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads for decoding (default 0: torch's default)")


def run_serve(args: argparse.Namespace) -> int:
    try:
        import torch
        import uvicorn

        from seq2seq import serve
    except ImportError as error:
        raise Seq2SeqError(f"serve needs the serve extra: pip install 'seq2seq[serve]' ({error})") from None
    if args.max_batch < 1 or args.max_wait_ms < 0:
        raise Seq2SeqError("--max-batch must be >= 1 and --max-wait-ms >= 0")
    limits = serve.Limits(max_body_bytes=args.max_body_bytes, max_texts=args.max_texts, max_chars=args.max_chars,
                          max_length=args.max_length, max_beam_size=args.max_beam_size, timeout=args.timeout,
                          max_in_flight=args.max_in_flight)
    settings = serve.Settings(args.max_batch, args.max_wait_ms, args.chat_history, limits)
    if args.threads:
        torch.set_num_threads(args.threads)
    models, paths = serve.load_models(args.model, args.device, args.precision)
    app = serve.create_app(models, settings, paths)
    logger.info("serving %s on http://%s:%d/", ", ".join(models), args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
