"""The command line of the HTTP server: `seq2seq serve`."""

from __future__ import annotations

import argparse
import logging

from seq2seq.cli import flags
from seq2seq.errors import Seq2SeqError
from seq2seq.serve.settings import Limits, Settings

logger = logging.getLogger(__name__)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve", help="serve models over HTTP: a JSON API and a web page (needs the serve extra)",
        description="An HTTP server (FastAPI + uvicorn; pip install 'seq2seq[serve]'): /v1/translate, /v1/generate, "
                    "/v1/chat, /v1/classify, /v1/transcribe, /v1/models, /healthz, /metrics, and a web page at /. "
                    "Concurrent requests with the same model and options are decoded together.")
    parser.add_argument("--model", required=True, action="append", metavar="[NAME=]DIR",
                        help="a run directory or checkpoint of any task (DIR1,DIR2 for an ensemble), or an export of a "
                             "translation model, language model or classifier (seq2seq export: runs on ONNX "
                             "Runtime); repeat for more models, the first is the default; a model is named after its "
                             "directory unless NAME= is given")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    flags.add_field_flags(parser, Settings)
    flags.add_field_flags(parser, Limits)
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    flags.add_precision(parser)
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
    settings = flags.from_flags(Settings, args, limits=flags.from_flags(Limits, args))
    if args.threads:
        torch.set_num_threads(args.threads)
    models, paths = serve.load_models(args.model, args.device, args.precision)
    app = serve.create_app(models, settings, paths)
    logger.info("serving %s on http://%s:%d/", ", ".join(models), args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5)
    return 0

