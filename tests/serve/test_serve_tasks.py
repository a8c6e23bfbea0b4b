"""Classifiers and speech models over real sockets: /v1/classify and /v1/transcribe answer as the Python API does,
/v1/models describes them, a route serves only its kind of model, and bad input gets a 4xx naming what."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("soundfile")
pytest.importorskip("librosa")

import httpx
import soundfile

from seq2seq.config import Config, apply_overrides
from seq2seq.data.audio import SAMPLE_RATE, read_audio_list
from seq2seq.data.synthesis import Voice, espeak_available, write_speech_list
from seq2seq.serve import Limits, Settings, load_models
from seq2seq.tasks.classify import train_classifier
from seq2seq.tasks.speech import train_speech
from tests.serve.test_serve import client_for, trained_models
from tests.tasks.test_classification import majority_pairs, tiny_config

pytestmark = pytest.mark.slow  # real servers on loopback, and four tiny models trained when this worker has none

CPU = ["train.device=cpu", "train.threads=1", "train.precision=fp32"]
SPEECH = ["model.hidden_size=16", "model.embedding_size=8", "model.conv_channels=4", "data.audio.n_mels=16",
          "model.dropout=0", "train.max_steps=5"]
WORDS = ("cat", "dog", "house")


def trained_task_models(base: Path) -> dict[str, Path]:
    """A classifier of the majority symbol (attention pooling) and a speech model of three words that espeak-ng
    speaks, each trained for a few steps (a few seconds) once per session into base; later calls reuse them. The
    spoken words' list is base/words.tsv."""
    if not espeak_available():
        pytest.skip("espeak-ng is not installed")
    paths = {"topics": base / "topics", "speech": base / "speech"}
    if not (paths["topics"] / "best.safetensors").exists():
        train_classifier(tiny_config("train.max_steps=20", *CPU), majority_pairs(200, 1), out_dir=paths["topics"])
    if not (paths["speech"] / "best.safetensors").exists():
        listing = write_speech_list(base, "words", [(word, Voice("en+m1")) for word in WORDS], seed=1)
        config = apply_overrides(Config(task="speech"), [*SPEECH, *CPU])
        train_speech(config, read_audio_list(listing), out_dir=paths["speech"])
    return paths


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny models of every kind: the translator and language model of test_serve, the classifier and speech
    model."""
    base = tmp_path_factory.getbasetemp()
    return {**trained_models(base / "serve-models"), **trained_task_models(base / "serve-task-models")}


@pytest.fixture(scope="module")
def models(dirs: dict[str, Path]) -> dict:
    loaded, _ = load_models([f"{name}={path}" for name, path in dirs.items()], device="cpu")
    return loaded


@pytest.fixture(scope="module")
def client(models: dict, dirs: dict[str, Path]) -> Iterator[httpx.Client]:
    with client_for(models, Settings(limits=Limits(max_texts=8, max_chars=100, max_audio_bytes=100_000)),
                    dirs) as client:
        yield client


@pytest.fixture(scope="module")
def wavs(dirs: dict[str, Path]) -> list[Path]:
    return [Path(pair.src) for pair in read_audio_list(dirs["speech"].parent / "words.tsv")]


def wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE, file_format: str = "WAV") -> bytes:
    written = io.BytesIO()
    soundfile.write(written, samples, rate, format=file_format)
    return written.getvalue()


def transcribe(client: httpx.Client, body: bytes, query: str = "?model=speech") -> httpx.Response:
    return client.post(f"/v1/transcribe{query}", content=body, headers={"content-type": "audio/wav"})


def test_classify_matches_the_python_api(client: httpx.Client, models: dict) -> None:
    texts = ["a b a c", "c c b", "b"]
    answer = client.post("/v1/classify", json={"model": "topics", "texts": texts, "top_k": 2}).json()
    expected = models["topics"].classify_detailed(texts, top_k=2)
    assert answer["model"] == "topics" and len(answer["classifications"]) == len(texts)
    for found, wanted in zip(answer["classifications"], expected, strict=True):
        assert found["label"] == wanted.label and found["probability"] == pytest.approx(wanted.probability, abs=1e-6)
        assert [top["label"] for top in found["top"]] == [label for label, _ in wanted.top]
        assert [top["probability"] for top in found["top"]] == pytest.approx([p for _, p in wanted.top], abs=1e-6)
        assert found["tokens"] == wanted.tokens
        assert found["attention"] == pytest.approx(wanted.attention.tolist(), abs=1e-4)
    one = client.post("/v1/classify", json={"model": "topics", "texts": ["a"]}).json()["classifications"][0]
    assert len(one["top"]) == 1 and one["top"][0]["label"] == one["label"]


def test_transcribe_of_wav_bytes_matches_the_python_api(client: httpx.Client, models: dict,
                                                          wavs: list[Path]) -> None:
    for wav in wavs:
        answer = transcribe(client, wav.read_bytes()).json()
        assert answer == {"model": "speech", "text": models["speech"].transcribe([wav])[0]}


def test_models_describes_every_kind(client: httpx.Client, models: dict) -> None:
    response = client.get("/v1/models")
    assert response.status_code == 200, response.text
    found = {m["name"]: m for m in response.json()["models"]}
    assert {name: (m["task"], m["routes"]) for name, m in found.items()} == {
        "reverse": ("translate", ["/v1/translate", "/v1/chat"]), "lm": ("generate", ["/v1/generate"]),
        "topics": ("classify", ["/v1/classify"]), "speech": ("transcribe", ["/v1/transcribe"])}
    topics, speech = found["topics"], found["speech"]
    assert topics["labels"] == models["topics"].labels and topics["attention"] is True
    assert topics["vocabulary"] == {"src": len(models["topics"].vocabs[0]), "labels": 3}
    assert speech["vocabulary"] == {"tgt": len(models["speech"].vocab)} and speech["tokens"] == {"tgt": "char"}
    assert all(m["parameters"] > 0 and m["runtime"] == "pytorch" for m in found.values())
    assert {"/v1/classify", "/v1/transcribe"} <= set(client.get("/openapi.json").json()["paths"])


@pytest.mark.parametrize(("route", "body", "message"), [
    ("/v1/translate", {"model": "topics", "texts": ["a"]},
     "model: 'topics' is a classify model and does not serve /v1/translate; use /v1/classify"),
    ("/v1/chat", {"model": "speech", "message": "a"},
     "model: 'speech' is a transcribe model and does not serve /v1/chat; use /v1/transcribe"),
    ("/v1/generate", {"model": "topics"}, "use /v1/classify"),
    ("/v1/classify", {"model": "reverse", "texts": ["a"]},
     "model: 'reverse' is a translate model and does not serve /v1/classify; use /v1/translate or /v1/chat"),
    ("/v1/classify", {"model": "lm", "texts": ["a"]}, "use /v1/generate"),
    ("/v1/classify", {"texts": ["a"]}, "model: 'reverse' is a translate model"),  # the first is the default
])
def test_a_route_serves_only_its_kind_of_model(client: httpx.Client, route: str, body: dict, message: str) -> None:
    response = client.post(route, json=body)
    assert response.status_code == 400 and message in response.json()["error"], response.text


def test_transcribe_with_another_kind_of_model_names_its_route(client: httpx.Client, wavs: list[Path]) -> None:
    response = transcribe(client, wavs[0].read_bytes(), "?model=topics")
    assert response.status_code == 400
    assert response.json()["error"] == ("model: 'topics' is a classify model and does not serve /v1/transcribe; "
                                        "use /v1/classify")


@pytest.mark.parametrize(("body", "status", "message"), [
    (b'{"model": "topics", "texts": ["a"]', 400, "body: malformed JSON"),
    ({"model": "topics"}, 422, "texts: required"),
    ({"model": "topics", "texts": []}, 422, "texts: empty list"),
    ({"model": "topics", "texts": "a b"}, 422, "texts: Input should be a valid list"),
    ({"model": "topics", "texts": [1]}, 422, "texts.0: Input should be a valid string"),
    ({"model": "topics", "texts": [" "]}, 422, "texts.0: empty text"),
    ({"model": "topics", "texts": ["a" * 101]}, 413, "texts.0: 101 characters is over the limit of 100"),
    ({"model": "topics", "texts": ["a"] * 9}, 413, "texts: 9 items is over the limit of 8"),
    ({"model": "topics", "texts": ["a"], "top_k": 0}, 422, "top_k: Input should be greater than or equal to 1"),
    ({"model": "topics", "texts": ["a"], "top_k": "2"}, 422, "top_k: Input should be a valid integer"),
    ({"model": "topics", "texts": ["a"], "top_k": 1.5}, 422, "top_k: Input should be a valid integer"),
    ({"model": "topics", "texts": ["a"], "k": 2}, 422, "k: unknown field"),
    ({"model": "nope", "texts": ["a"]}, 404, "model: unknown model 'nope'"),
])
def test_bad_classify_requests_get_4xx_naming_the_field(client: httpx.Client, body: object, status: int,
                                                        message: str) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post("/v1/classify", content=content, headers={"content-type": "application/json"})
    assert response.status_code == status and message in response.json()["error"], response.text


def test_top_k_beyond_the_labels_gives_every_label(client: httpx.Client) -> None:
    found = client.post("/v1/classify", json={"model": "topics", "texts": ["a"], "top_k": 99}).json()
    assert sorted(top["label"] for top in found["classifications"][0]["top"]) == ["a", "b", "c"]


TONE = (0.3 * np.sin(np.linspace(0, 2000, 8000))).astype(np.float32)
BAD_AUDIO = [
    (b"", "?model=speech", 400, "body: empty; send a WAV file's bytes"),
    (b"not audio at all", "?model=speech", 422, "body: cannot read as audio"),
    (b'{"audio": "a.wav"}', "?model=speech", 422, "body: cannot read as audio"),
    (wav_bytes(TONE, file_format="FLAC"), "?model=speech", 422, "body: not a WAV file"),
    (wav_bytes(TONE, rate=22050), "?model=speech", 422, "body: sampled at 22050 Hz; speech input is 16000 Hz"),
    (wav_bytes(np.stack([TONE, TONE], axis=1)), "?model=speech", 422, "body: 2 channels; speech input is mono"),
    (wav_bytes(np.zeros(0, dtype=np.float32)), "?model=speech", 422, "body: no samples"),
    (b"\0" * 100_001, "?model=speech", 413, "body: 100001 bytes is over the limit of 100000"),
    (wav_bytes(TONE), "?model=nope", 404, "model: unknown model 'nope'"),
    (wav_bytes(TONE), "?model=speech&beam=2", 422, "beam: unknown query parameter"),
]


@pytest.mark.parametrize(("body", "query", "status", "message"), BAD_AUDIO, ids=[str(i) for i in range(len(BAD_AUDIO))])
def test_bad_audio_gets_a_4xx_naming_the_problem(client: httpx.Client, body: bytes, query: str, status: int,
                                                 message: str) -> None:
    response = transcribe(client, body, query)
    assert response.status_code == status and message in response.json()["error"], response.text
    assert "\n" not in response.json()["error"]


@pytest.mark.filterwarnings("ignore:n_fft=.* is too large for input signal")
def test_a_tone_and_a_single_sample_are_transcribed(client: httpx.Client) -> None:
    """Any 16 kHz mono WAV is speech input, however short: it gets a transcript, not an error."""
    for samples in (TONE, TONE[:1]):
        response = transcribe(client, wav_bytes(samples))
        assert response.status_code == 200 and isinstance(response.json()["text"], str), response.text
