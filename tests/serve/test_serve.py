"""The HTTP server over real sockets: routes, cross-request batching, limits and bad requests (uvicorn in a thread,
httpx), and the real process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import toy_pairs

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

import httpx

from seq2seq import api
from seq2seq.config import Config, apply_overrides
from seq2seq.decoding.options import DecodingOptions
from seq2seq.serve import Limits, Settings, create_app, load_models
from seq2seq.tasks.lm import TextGenerator, train_language_model
from tests.serving import free_port, serving

pytestmark = pytest.mark.slow  # a real server on loopback

TINY = ["model.hidden_size=32", "model.embedding_size=16", "model.dropout=0.0", "train.precision=fp32",
        "train.lr=0.01", "train.seed=1", "train.threads=1", "train.device=cpu", "data.batch_size=16"]
LM_TEXT = ["the cat sat on the mat", "a dog ran in the park", "the sun is hot today"] * 20


def trained_models(base: Path) -> dict[str, Path]:
    """A reversing translator (word tokens, attention) and a char language model, trained once per session
    (a few seconds) into base; later calls reuse them."""
    paths = {"reverse": base / "reverse", "lm": base / "lm"}
    if not (paths["reverse"] / "best.safetensors").exists():
        config = apply_overrides(Config(), [*TINY, "data.src.kind=word", "data.tgt.kind=word", "train.max_steps=60",
                                            "train.eval_every=60"])
        api.train(config, toy_pairs("reverse", 400, 1), toy_pairs("reverse", 20, 2), paths["reverse"])
    if not (paths["lm"] / "best.safetensors").exists():
        config = apply_overrides(Config(), [*TINY, "data.entries=line", "data.window=24", "train.max_steps=20"])
        train_language_model(config, LM_TEXT, out_dir=paths["lm"])
    return paths


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return trained_models(tmp_path_factory.getbasetemp() / "serve-models")


@pytest.fixture(scope="module")
def models(model_dirs: dict[str, Path]) -> dict[str, api.Translator | TextGenerator]:
    loaded, _ = load_models([f"{name}={path}" for name, path in model_dirs.items()], device="cpu")
    return loaded


@contextmanager
def client_for(models: dict[str, api.Translator | TextGenerator], settings: Settings | None = None,
               paths: dict[str, Path] | None = None) -> Iterator[httpx.Client]:
    """An HTTP client of a real server (uvicorn on loopback) serving the models, for the block."""
    app = create_app(models, settings, {name: str(path) for name, path in (paths or {}).items()})
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def client(models: dict[str, api.Translator | TextGenerator], model_dirs: dict[str, Path]) -> Iterator[httpx.Client]:
    with client_for(models, Settings(limits=Limits(max_texts=8, max_chars=100)), model_dirs) as client:
        yield client


def test_health_models_docs_and_page(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    found = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert found["reverse"]["task"] == "translate" and found["reverse"]["attention"] is True
    assert found["lm"]["task"] == "generate" and found["reverse"]["training"]["eval"]["step"] > 0
    assert "/v1/translate" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" not in page.text and "http" not in page.text.split("<script")[0]


def test_translate_matches_the_python_api(client: httpx.Client, models: dict) -> None:
    texts = ["a b c d", "e f g h i"]
    answer = client.post("/v1/translate", json={"texts": texts, "attention": True}).json()["translations"]
    expected = models["reverse"].translate_detailed(texts, DecodingOptions())
    for found, wanted in zip(answer, expected, strict=True):
        assert [t["text"] for t in found] == [wanted[0].text]
        attention = found[0]["attention"]
        assert len(attention) == len(found[0]["tokens"]) and len(attention[0]) == len(found[0]["src_tokens"])
        assert found[0]["log_prob"] == pytest.approx(wanted[0].log_prob, abs=1e-4)


def test_beam_n_best_and_seeded_samples(client: httpx.Client) -> None:
    beam = client.post("/v1/translate", json={"texts": ["a b c"], "strategy": "beam", "beam_size": 4, "n_best": 3,
                                              "length_penalty": 0.0}).json()["translations"][0]
    assert len(beam) == 3 and [t["log_prob"] for t in beam] == sorted((t["log_prob"] for t in beam), reverse=True)
    body = {"texts": ["a b c", "d e f"], "strategy": "sample", "num_samples": 2, "seed": 7, "temperature": 1.5}
    first, second = (client.post("/v1/translate", json=body).json() for _ in range(2))
    assert first == second and len(first["translations"][1]) == 2


def test_concurrent_requests_are_batched_and_answered_as_alone(models: dict) -> None:
    """fp32 model: the same outputs whether a sentence is decoded alone or in a batch with others."""
    texts = [" ".join(pair.src.split()) for pair in toy_pairs("reverse", 16, 5)]
    with client_for(models, Settings(max_batch=1)) as client:
        alone = [client.post("/v1/translate", json={"texts": [text]}).json() for text in texts]
    with client_for(models, Settings(max_batch=len(texts), max_wait_ms=2000)) as client:
        with ThreadPoolExecutor(len(texts)) as pool:
            together = list(pool.map(lambda t: client.post("/v1/translate", json={"texts": [t]}).json(), texts))
        metrics = client.get("/metrics").text
    assert [a["translations"][0][0]["text"] for a in alone] == [t["translations"][0][0]["text"] for t in together]
    for a, t in zip(alone, together, strict=True):
        assert a["translations"][0][0]["log_prob"] == pytest.approx(t["translations"][0][0]["log_prob"], abs=1e-5)
    batches = int(metrics.split("seq2seq_batch_size_count ")[1].split()[0])
    assert batches < len(texts) // 2  # the first alone (nothing else in flight yet), the others together


def test_generate_stream_and_chat(client: httpx.Client) -> None:
    body = {"model": "lm", "prompt": "the", "temperature": 0.8, "max_length": 20, "seed": 3}
    texts = client.post("/v1/generate", json={**body, "num": 2}).json()["texts"]
    assert len(texts) == 2 and all(text.startswith("the") for text in texts)
    alone = client.post("/v1/generate", json=body).json()["texts"][0]
    with client.stream("POST", "/v1/generate", json={**body, "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["transfer-encoding"] == "chunked"  # sent in pieces, not as one body
        events = [line for line in response.iter_lines() if line]
    pieces = [json.loads(line[6:])["text"] for line in events if line.startswith("data: {\"text\"")]
    assert events[-2] == "event: done" and len(pieces) > 1 and "the" + "".join(pieces) == alone
    chat = client.post("/v1/chat", json={"message": "a b c", "history": ["x", "y"]}).json()
    assert chat["history"] == ["x", "y", "a b c", chat["reply"]]


def test_an_exported_translator_is_served_on_onnx_runtime(model_dirs: dict[str, Path], models: dict,
                                                         tmp_path: Path) -> None:
    """serve --model EXPORT_DIR: /v1/translate and /v1/chat answer through the ONNX translator, as PyTorch does (an
    exported language model's /v1/generate: tests/onnx/test_onnx_lm.py)."""
    pytest.importorskip("onnxruntime")
    from seq2seq.onnx.export import export

    export(model_dirs["reverse"], tmp_path / "export")
    loaded, paths = load_models([f"onnx={tmp_path / 'export'}"], device="cpu")
    texts = ["a b c d", "e f g h i"]
    with client_for({**loaded, "reverse": models["reverse"]}, paths=paths) as client:
        described = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
        answers = [client.post("/v1/translate", json={"texts": texts, "model": name, "attention": True}).json()
                   for name in ("onnx", "reverse")]
        chat = client.post("/v1/chat", json={"message": "a b c", "model": "onnx"}).json()
    assert described["onnx"]["runtime"] == "onnxruntime" and described["onnx"]["parameters"] is None
    assert described["reverse"]["runtime"] == "pytorch" and described["onnx"]["vocabulary"] == \
        described["reverse"]["vocabulary"]
    onnx, torch = (answer["translations"] for answer in answers)
    assert [[t["text"] for t in found] for found in onnx] == [[t["text"] for t in found] for found in torch]
    for mine, theirs in zip(onnx, torch, strict=True):
        assert mine[0]["log_prob"] == pytest.approx(theirs[0]["log_prob"], abs=1e-4)
        assert np.allclose(mine[0]["attention"], theirs[0]["attention"], atol=1e-3)
    assert chat["reply"] == models["reverse"].translate(["a b c"])[0]


BAD = [
    (b'{"texts": ["a"]', 400, "body: malformed JSON"),
    (b'{"texts": ["\xff"]}', 400, "invalid UTF-8"),
    (b'{"texts": ["\\ud800"]}', 400, "texts.0: invalid Unicode"),
    (b'{"texts": [1e999999]}', 422, "texts.0"),
    (b'{"texts": [NaN]}', 400, "NaN"),
    (b'[1, 2]', 422, "body: expected a JSON object"),
    (b'"a"', 422, "body: expected a JSON object"),
    (b'', 400, "malformed JSON"),
    ({"texts": "a b"}, 422, "texts: Input should be a valid list"),
    ({"texts": [1]}, 422, "texts.0: Input should be a valid string"),
    ({}, 422, "texts: required"),
    ({"texts": []}, 422, "texts: empty list"),
    ({"texts": [" "]}, 422, "texts.0: empty text"),
    ({"texts": ["a" * 101]}, 413, "texts.0: 101 characters"),
    ({"texts": ["a"] * 9}, 413, "texts: 9 items"),
    ({"texts": ["a"], "colour": 1}, 422, "colour: unknown field"),
    ({"texts": ["a"], "beam_size": 3}, 422, "beam_size applies only to strategy 'beam'"),
    ({"texts": ["a"], "temperature": 0.5}, 422, "temperature applies only to strategy 'sample'"),
    ({"texts": ["a"], "strategy": "best"}, 422, "unknown decoding strategy"),
    ({"texts": ["a"], "strategy": "beam", "beam_size": 99}, 422, "beam_size: 99 is over the limit"),
    ({"texts": ["a"], "strategy": "beam", "beam_size": "5"}, 422, "beam_size: Input should be a valid integer"),
    ({"texts": ["a"], "strategy": "beam", "beam_size": 2, "n_best": 3}, 422, "n_best must be between"),
    ({"texts": ["a"], "max_length": 10**6}, 422, "max_length: 1000000 is over the limit"),
    ({"texts": ["a"], "max_length": -1}, 422, "max_length must be >= 0"),
    ({"texts": ["a"], "ban_unk": 1}, 422, "ban_unk: Input should be a valid boolean"),
    ({"texts": ["a"], "strategy": "sample", "top_p": 2.0}, 422, "top_p must be in (0, 1]"),
    ({"texts": ["a"], "model": "nope"}, 404, "model: unknown model 'nope'"),
    ({"texts": ["a"], "model": "lm"}, 400, "model: 'lm' is a generate model"),
    ({"texts": ["a"], "model": 5}, 422, "model: Input should be a valid string"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_translate_requests_get_4xx_naming_the_field(client: httpx.Client, body: object, status: int,
                                                         message: str) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post("/v1/translate", content=content, headers={"content-type": "application/json"})
    assert response.status_code == status and message in response.json()["error"], response.text


@pytest.mark.parametrize(("route", "body", "status", "message"), [
    ("/v1/generate", {"prompt": "a"}, 400, "model: 'reverse' is a translate model"),
    ("/v1/generate", {"model": "lm", "max_length": 0}, 422, "max_length must be at least 1"),
    ("/v1/generate", {"model": "lm", "max_length": 600}, 422, "max_length: 600 is over the limit of 512"),
    ("/v1/generate", {"model": "lm", "num": 99}, 422, "num: 99 is over the limit of 16"),
    ("/v1/generate", {"model": "lm", "strategy": "beam"}, 422, "strategy beam does not apply"),
    ("/v1/generate", {"model": "lm", "stream": True, "num": 2}, 422, "num: streaming writes one text"),
    ("/v1/generate", {"model": "lm", "temperature": -1.0}, 422, "temperature must be > 0"),
    ("/v1/generate", {"model": "lm", "stream": True, "num": 2}, 422, "num: streaming writes one text"),
    ("/v1/generate", {"model": "lm", "prompt": "x" * 101}, 413, "prompt: 101 characters"),
    ("/v1/generate", {"model": "lm", "stop_at_end": "yes"}, 422, "stop_at_end: Input should be a valid boolean"),
    ("/v1/chat", {"message": ""}, 422, "message: empty text"),
    ("/v1/chat", {"message": "a", "history": [1]}, 422, "history.0: Input should be a valid string"),
    ("/v1/chat", {"message": "a", "model": "lm"}, 400, "model: 'lm' is a generate model"),
])
def test_bad_generate_and_chat_requests(client: httpx.Client, route: str, body: dict, status: int,
                                        message: str) -> None:
    response = client.post(route, json=body)
    assert response.status_code == status and message in response.json()["error"], response.text


def test_routes_methods_size_overload_timeout_and_metrics(models: dict) -> None:
    with client_for(models, Settings(limits=Limits(max_body_bytes=100))) as client:
        assert client.get("/v1/nothing").json()["error"] == "GET /v1/nothing: Not Found"
        assert client.get("/v1/translate").status_code == 405
        big = client.post("/v1/translate", content=b'{"texts": ["' + b"a" * 200 + b'"]}')
        assert big.status_code == 413 and big.json()["error"].startswith("body:")
        metrics = client.get("/metrics").text
    assert 'seq2seq_requests_total{route="/v1/translate",status="413"} 1' in metrics
    assert "# TYPE seq2seq_request_seconds histogram" in metrics and "seq2seq_queue_depth 0" in metrics
    with client_for(models, Settings(limits=Limits(max_in_flight=0))) as client:
        refused = client.post("/v1/translate", json={"texts": ["a"]})
        assert refused.status_code == 429 and "too many requests" in refused.json()["error"]
    with client_for(models, Settings(limits=Limits(timeout=1e-6))) as client:
        late = client.post("/v1/translate", json={"texts": ["a"]})
        assert late.status_code == 503 and "timed out" in late.json()["error"]
        assert client.post("/v1/translate", json={"texts": ["a"], "max_length": 3}).status_code in (200, 503)


def test_the_serve_command_answers_over_real_sockets(model_dirs: dict[str, Path]) -> None:
    port = free_port()
    command = [sys.executable, "-m", "seq2seq.cli", "serve", "--model", str(model_dirs["reverse"]),
               "--model", f"lm={model_dirs['lm']}", "--port", str(port), "--device", "cpu"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, process.stdout.read().decode()
                time.sleep(0.2)
        answer = httpx.post(f"{url}/v1/translate", json={"texts": ["a b c"]}).json()
        assert answer["translations"][0][0]["text"]
        assert httpx.post(f"{url}/v1/translate", content=b"{").status_code == 400
        names = [m["name"] for m in httpx.get(f"{url}/v1/models").json()["models"]]
        assert names == ["reverse", "lm"]
    finally:
        process.terminate()
        process.wait(timeout=20)
