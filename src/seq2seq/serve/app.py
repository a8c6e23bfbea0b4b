"""The HTTP API and web page: parse and check requests, batch them, call seq2seq.api, serialise the answers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from seq2seq.api import Translation, Translator
from seq2seq.data.audio import wav_frames
from seq2seq.decoding.options import DecodingOptions
from seq2seq.errors import Seq2SeqError
from seq2seq.evaluation import reports
from seq2seq.serve.batching import Batcher
from seq2seq.serve.monitoring import Guard, Metrics
from seq2seq.serve.schemas import (
    ChatRequest,
    ClassifyRequest,
    GenerateRequest,
    TranslateRequest,
    decoding_options,
    generation_knobs,
)
from seq2seq.serve.settings import Limits, Settings
from seq2seq.tasks import registry
from seq2seq.tasks.chat import Chatbot
from seq2seq.tasks.classification import Classification
from seq2seq.tasks.classify import TextClassifier
from seq2seq.tasks.lm import TextGenerator
from seq2seq.tasks.speech import SpeechTranscriber
from seq2seq.tasks.transcribing import Transcribing

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
PAGES = ("/", "/healthz", "/metrics", "/v1/models")  # the routes that serve no model
Model = Translator | TextGenerator | TextClassifier | SpeechTranscriber
"""A served model; exports (`seq2seq.onnx`'s OnnxTranslator, OnnxGenerator, OnnxClassifier, OnnxTranscriber) serve as
a Translator, a TextGenerator, a TextClassifier, a SpeechTranscriber."""
RequestT = TypeVar("RequestT", bound=BaseModel)


class ApiError(Exception):
    """A request the server will not answer: status and a one-line message naming the field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Server:
    """The loaded models and what serves them; one per app."""

    models: dict[str, Model]
    settings: Settings
    paths: dict[str, str]
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "seq2seq-decode"))
    metrics: Metrics = field(default_factory=Metrics)
    batcher: Batcher | None = None

    @property
    def limits(self) -> Limits:
        return self.settings.limits

    def start(self) -> None:
        self.batcher = Batcher(self._decode, self.executor, self.settings.max_batch,
                               self.settings.max_wait_ms / 1000, self.metrics.batch,
                               lambda: self.metrics.in_flight)

    def model(self, name: str | None, route: str) -> tuple[str, Any]:
        """The named model (the first one by default), which the route must serve (`routes_of`)."""
        name = name or next(iter(self.models))
        if name not in self.models:
            raise ApiError(404, f"model: unknown model {name!r} (loaded: {', '.join(self.models)})")
        found = self.models[name]
        if route not in routes_of(found):
            raise ApiError(400, f"model: {name!r} is a {_task(found)} model and does not serve {route}; "
                                f"use {' or '.join(routes_of(found))}")
        return name, found

    async def translate(self, name: str, options: DecodingOptions, texts: list[str]) -> list[list[Translation]]:
        """Each text's translations, decoded with whatever other requests wait for the same model and options."""
        assert self.batcher is not None
        alone = options.strategy == "sample" and options.seed is not None  # its draws must not depend on others
        key: Hashable = (name, options, object()) if alone else (name, options)
        return await self.bounded(self.batcher.submit(key, texts))

    async def bounded(self, work: Awaitable[Any]) -> Any:
        try:
            return await asyncio.wait_for(work, self.limits.timeout)
        except TimeoutError:
            raise ApiError(503, f"timed out after {self.limits.timeout:g} s; try again later") from None

    async def in_thread(self, call: Callable[[], Any]) -> Any:
        """Run a decode in the decoding thread, after the batches queued before it."""
        return await self.bounded(asyncio.get_running_loop().run_in_executor(self.executor, call))

    def _decode(self, key: Hashable, texts: list[str]) -> list[list[Translation]]:
        name, options = key[0], key[1]  # type: ignore[index]
        translator = cast(Translator, self.models[name])  # the batcher decodes translations only
        return translator.translate_detailed(texts, options, batch_size=max(1, len(texts)))

    def queue_depth(self) -> int:
        return self.batcher.pending if self.batcher else 0


def routes_of(model: Model) -> tuple[str, ...]:
    """The routes that serve the model (PyTorch or exported), its own first (`registry.Task.routes`)."""
    return registry.of_model(model).routes


def all_routes() -> tuple[str, ...]:
    """Every route of the app: the pages and each task's."""
    return (*PAGES, *dict.fromkeys(route for task in registry.tasks() for route in task.routes))


def create_app(models: Mapping[str, Model], settings: Settings | None = None,
               paths: Mapping[str, str] | None = None) -> FastAPI:
    """A FastAPI app serving the models (the first is the default), for uvicorn or any ASGI server.

    Args:
        models: name -> a Translator (translation, G2P, summarization, chat), a TextGenerator (language model), a
            TextClassifier or a SpeechTranscriber, or an export of any of them on ONNX Runtime.
        settings: batching and limits.
        paths: name -> the run directory it was loaded from (for its training metrics in /v1/models).
    """
    if not models:
        raise Seq2SeqError("serve needs at least one model")
    server = Server(dict(models), settings or Settings(), dict(paths or {}))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.start()
        yield
        assert server.batcher is not None
        await server.batcher.close()
        server.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="seq2seq", version="1", lifespan=lifespan,
                  description="Translation, G2P, summarization, chat, text generation, classification and speech "
                              "recognition with seq2seq models.")
    app.state.server = server
    _add_handlers(app, server)
    _add_pages(app, server)
    _add_routes(app, server)
    return app


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _add_handlers(app: FastAPI, server: Server) -> None:
    """Every error is {"error": "..."}; too many requests in flight get a 429 at once; everything is counted."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return _error(error.status, error.message)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, f"{request.method} {request.url.path}: {error.detail}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("internal error on %s", request.url.path)
        return _error(500, "internal error")

    limit = server.limits.max_in_flight
    app.add_middleware(Guard, metrics=server.metrics, routes=all_routes(), max_in_flight=limit,
                       overloaded=_error(429, f"too many requests in flight (limit {limit})"))


def _add_pages(app: FastAPI, server: Server) -> None:
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(server.metrics.render(server.queue_depth),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"models": [_describe(name, model, server.paths.get(name), server.settings)
                           for name, model in server.models.items()], "limits": dataclasses.asdict(server.limits)}


def _add_routes(app: FastAPI, server: Server) -> None:
    @app.post("/v1/translate", openapi_extra=_body(TranslateRequest))
    async def translate(request: Request) -> dict[str, Any]:
        body = await parse(request, TranslateRequest, server.limits)
        name, translator = server.model(body.model, "/v1/translate")
        texts = _texts(body.texts, server.limits)
        if body.attention and not translator.attends():
            raise ApiError(400, f"attention: model {name!r} (arch {translator.config.model.arch}) has no attention")
        options = _options(body, translator, server.limits)
        results = await server.translate(name, options, texts)
        return {"translations": [[_translation(t, body.attention) for t in found] for found in results]}

    @app.post("/v1/generate", openapi_extra=_body(GenerateRequest))
    async def generate(request: Request) -> Any:
        body = await parse(request, GenerateRequest, server.limits)
        _, generator = server.model(body.model, "/v1/generate")
        prompt = _text(body.prompt, "prompt", server.limits, empty=True)
        knobs = _generation_knobs(body, server.limits)
        if body.stream:
            pieces = _checked(lambda: generator.stream(prompt, stop_at_end=body.stop_at_end, **knobs))
            return StreamingResponse(_events(server, pieces), media_type="text/event-stream")
        texts = await server.in_thread(
            lambda: _checked(lambda: generator.generate(prompt, stop_at_end=body.stop_at_end, **knobs)))
        return {"texts": texts}

    @app.post("/v1/chat", openapi_extra=_body(ChatRequest))
    async def chat(request: Request) -> dict[str, Any]:
        body = await parse(request, ChatRequest, server.limits)
        _, translator = server.model(body.model, "/v1/chat")
        message = _text(body.message, "message", server.limits)
        history = [_text(turn, f"history.{i}", server.limits, empty=True) for i, turn in enumerate(body.history)]
        _check_count(len(history), server.limits.max_history, "history", allow_empty=True)
        bot = Chatbot(translator, server.settings.chat_history, _options(body, translator, server.limits))
        bot.turns.extend(history)  # the deque keeps the last chat_history turns
        reply = await server.in_thread(lambda: _checked(lambda: bot.reply(message)))
        return {"reply": reply, "history": [*history, " ".join(message.split()), reply]}

    @app.post("/v1/classify", openapi_extra=_body(ClassifyRequest))
    async def classify(request: Request) -> dict[str, Any]:
        body = await parse(request, ClassifyRequest, server.limits)
        name, classifier = server.model(body.model, "/v1/classify")
        texts = _texts(body.texts, server.limits)
        found = await server.in_thread(
            lambda: classifier.classify_detailed(texts, body.top_k, batch_size=server.settings.max_batch))
        return {"model": name, "classifications": [_classification(result) for result in found]}

    @app.post("/v1/transcribe", openapi_extra=WAV_REQUEST)
    async def transcribe(request: Request) -> dict[str, Any]:
        name, transcriber = server.model(_model_parameter(request), "/v1/transcribe")
        wav = await _read_body(request, server.limits.max_audio_bytes)
        if not wav:
            raise ApiError(400, "body: empty; send a WAV file's bytes (16 kHz mono) as audio/wav")
        text = await server.in_thread(lambda: _checked(lambda: _transcript(transcriber, wav)))
        return {"model": name, "text": text}


# ---- parsing and checking


async def parse(request: Request, schema: type[RequestT], limits: Limits) -> RequestT:
    """The body as the schema: size, UTF-8, JSON and fields checked, each failure an ApiError naming what."""
    body = await _read_body(request, limits.max_body_bytes)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(400, f"body: invalid UTF-8 at byte {error.start}") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as error:
        raise ApiError(400, f"body: malformed JSON ({error})") from None
    if not isinstance(data, dict):
        raise ApiError(422, f"body: expected a JSON object, not {type(data).__name__}")
    _check_unicode(data, "")
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        raise ApiError(422, _validation_message(error)) from None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit():
        raise ApiError(400, "content-length: not a number")
    if int(declared) > limit:
        raise ApiError(413, f"body: {declared} bytes is over the limit of {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"body: over the limit of {limit} bytes")
    return bytes(body)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _check_unicode(value: Any, where: str) -> None:
    """Lone surrogates (\\ud800 escapes) are not text: they could not even be written back as UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(400, f"{where or 'body'}: invalid Unicode (a lone surrogate)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_unicode(key, where)
            _check_unicode(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_unicode(item, f"{where}.{index}")


def _validation_message(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    if first["type"] == "extra_forbidden":
        return f"{where}: unknown field"
    if first["type"] == "missing":
        return f"{where}: required"
    return f"{where}: {first['msg']}"


def _model_parameter(request: Request) -> str | None:
    """The `?model=` of a request whose body is not JSON; any other query parameter is an error."""
    for key in request.query_params:
        if key != "model":
            raise ApiError(422, f"{key}: unknown query parameter")
    return request.query_params.get("model")


def _texts(texts: list[str], limits: Limits) -> list[str]:
    """A request's texts, each non-empty and within the limits, as many as the limits allow."""
    _check_count(len(texts), limits.max_texts, "texts")
    return [_text(text, f"texts.{index}", limits) for index, text in enumerate(texts)]


def _text(text: str, where: str, limits: Limits, empty: bool = False) -> str:
    if not empty and not text.strip():
        raise ApiError(422, f"{where}: empty text")
    if len(text) > limits.max_chars:
        raise ApiError(413, f"{where}: {len(text)} characters is over the limit of {limits.max_chars}")
    return text


def _check_count(count: int, limit: int, where: str, allow_empty: bool = False) -> None:
    if not count and not allow_empty:
        raise ApiError(422, f"{where}: empty list")
    if count > limit:
        raise ApiError(413, f"{where}: {count} items is over the limit of {limit}")


def _options(body: BaseModel, translator: Translator, limits: Limits) -> DecodingOptions:
    """The request's decoding options within the limits; summarization models default to their length limit."""
    options = _checked(lambda: decoding_options(body))
    ceilings = {"max_length": limits.max_length, "min_length": limits.max_length, "beam_size": limits.max_beam_size,
                "n_best": limits.max_outputs, "num_samples": limits.max_outputs}
    for name, ceiling in ceilings.items():
        value = getattr(options, name)
        if value is not None and value > ceiling:
            raise ApiError(422, f"{name}: {value} is over the limit of {ceiling}")
    if _task(translator) == "summarize" and not options.max_length:
        options = dataclasses.replace(options, max_length=translator.summary_length())
    return options


def _generation_knobs(body: BaseModel, limits: Limits) -> dict[str, Any]:
    """The knobs the request sets, within the limits; streaming writes one text."""
    knobs = generation_knobs(body)
    ceilings = {"max_length": limits.max_length, "min_length": limits.max_length, "num": limits.max_outputs,
                "num_samples": limits.max_outputs}
    for name, ceiling in ceilings.items():
        if knobs.get(name) is not None and knobs[name] > ceiling:
            raise ApiError(422, f"{name}: {knobs[name]} is over the limit of {ceiling}")
    if body.stream and (knobs.pop("num", 1) != 1 or knobs.pop("num_samples", 1) != 1):  # type: ignore[attr-defined]
        raise ApiError(422, "num: streaming writes one text (num 1)")
    return knobs


T = TypeVar("T")


def _checked(call: Callable[[], T]) -> T:
    """The library's own checks (DecodingOptions, generate, chat) as 422s; their messages name the knob."""
    try:
        return call()
    except Seq2SeqError as error:
        raise ApiError(422, str(error)) from None


# ---- answers


def _translation(translation: Translation, attention: bool) -> dict[str, Any]:
    found: dict[str, Any] = {"text": translation.text, "log_prob": round(translation.log_prob, 6),
                             "tokens": translation.tokens, "src_tokens": translation.src_tokens}
    if attention and translation.attention is not None:
        found["attention"] = _rounded(translation.attention.tolist())
    return found


def _classification(classification: Classification) -> dict[str, Any]:
    """A text's label and probability, its top labels, its tokens and, with attention pooling, the weight of each."""
    found: dict[str, Any] = {
        "label": classification.label, "probability": round(classification.probability, 6),
        "top": [{"label": label, "probability": round(probability, 6)} for label, probability in classification.top],
        "tokens": classification.tokens}
    if classification.attention is not None:
        found["attention"] = _rounded(classification.attention.tolist())
    return found


def _rounded(weights: Any) -> Any:
    """Attention weights (nested lists of floats, as `tolist()` gives them) to 4 decimals."""
    return [_rounded(weight) for weight in weights] if isinstance(weights, list) else round(float(weights), 4)


def _transcript(transcriber: Transcribing, wav: bytes) -> str:
    """The transcript of a WAV file's bytes (read in memory; a bad file is a DataError naming the body)."""
    return transcriber.best_transcripts([wav_frames(wav, transcriber.config.data.audio, "body")])[0]


async def _events(server: Server, pieces: Iterator[str]) -> AsyncIterator[str]:
    """Server-sent events: `data: {"text": piece}` as the tokens are produced, then `event: done`."""
    loop, queue = asyncio.get_running_loop(), asyncio.Queue[tuple[str, str]]()
    stopped = False

    def produce() -> None:
        try:
            for piece in pieces:
                if stopped:
                    return
                loop.call_soon_threadsafe(queue.put_nowait, ("token", piece))
            loop.call_soon_threadsafe(queue.put_nowait, ("done", ""))
        except Exception as error:  # reported to the client; the server keeps serving
            loop.call_soon_threadsafe(queue.put_nowait, ("error", str(error)))

    loop.run_in_executor(server.executor, produce)
    try:
        while True:
            kind, value = await asyncio.wait_for(queue.get(), server.limits.timeout)
            if kind == "token":
                yield f"data: {json.dumps({'text': value})}\n\n"
            else:
                yield f"event: {kind}\ndata: {json.dumps({'error': value} if value else {})}\n\n"
                return
    finally:
        stopped = True


def _task(model: Model) -> str:
    """What the model does, for /v1/models and error messages: its own route's verb (translate, generate, classify,
    transcribe), or summarize for a translation model that copies."""
    verb = routes_of(model)[0].rpartition("/")[2]
    return "summarize" if verb == "translate" and reports.task_kind(model.config) == "summarization" else verb


def _describe(name: str, model: Model, path: str | None, settings: Settings) -> dict[str, Any]:
    config, parameters = model.config, _parameters(model)
    tokens, vocabulary = _vocabularies(model)
    labels = {"labels": model.labels} if hasattr(model, "labels") else {}
    return {"name": name, "task": _task(model), "routes": list(routes_of(model)), "tokens": tokens,
            "vocabulary": vocabulary, **labels, "architecture": dataclasses.asdict(config.model),
            "attention": _attends(model), "parameters": parameters,
            "runtime": "onnxruntime" if parameters is None else "pytorch", "chat_history": settings.chat_history,
            "training": _training_metrics(path)}


def _vocabularies(model: Model) -> tuple[dict[str, str], dict[str, int]]:
    """The token kinds of the model's text input (src) and output (tgt), and its vocabularies' sizes (a classifier's
    number of labels for its output)."""
    data = model.config.data
    if hasattr(model, "labels"):  # a classifier: text in, a label out
        return {"src": data.src.kind}, {"src": len(model.vocabs[0]), "labels": len(model.labels)}
    vocabs = getattr(model, "vocabs", None) or ((model.vocab,) if hasattr(model, "vocab") else ())
    if len(vocabs) == 2:  # a translator: text in, text out
        return {"src": data.src.kind, "tgt": data.tgt.kind}, {"src": len(vocabs[0]), "tgt": len(vocabs[1])}
    if len(vocabs) == 1:  # language and speech models write text only
        return {"tgt": data.tgt.kind}, {"tgt": len(vocabs[0])}
    return {}, {}  # a task registered by its user, whose facade keeps its vocabularies otherwise


def _parameters(model: Model) -> int | None:
    """The PyTorch model's parameter count; None for an exported model (its weights are in the ONNX graphs)."""
    parameters = getattr(model.model, "parameters", None)
    return sum(p.numel() for p in parameters()) if parameters else None


def _attends(model: Model) -> bool:
    """Whether the answers can show attention weights: a translator's over the source, a classifier's attention
    pooling's over the text."""
    return hasattr(model, "attends") and model.attends()


def _training_metrics(path: str | None) -> dict[str, Any]:
    """The last training and evaluation records of the run's metrics.jsonl (empty without one)."""
    log = Path(path) / "metrics.jsonl" if path else None
    found: dict[str, Any] = {}
    if log is None or not log.is_file():
        return found
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            found[str(record.get("event", "other"))] = record
    return found


WAV_REQUEST = {
    "parameters": [{"name": "model", "in": "query", "required": False, "schema": {"type": "string"}}],
    "requestBody": {"required": True, "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}}}
"""/v1/transcribe in the OpenAPI schema: the WAV file's bytes as the body, the model in the query."""


def _body(schema: type[BaseModel]) -> dict[str, Any]:
    """The request body in the OpenAPI schema (the routes parse it themselves, to answer errors their way)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema.model_json_schema()}}}}
