"""An exported speech model: its convolutional front end, encoder and CTC head in one graph, its decoder step in
another, transcribing on ONNX Runtime without torch what PyTorch transcribes, by every strategy, on the command line
and over HTTP too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("librosa")
from seq2seq import api
from seq2seq.config import Config, apply_overrides
from seq2seq.data.audio import load_frames, read_audio_list
from seq2seq.data.synthesis import espeak_available, write_speech_list
from seq2seq.decoding.options import DecodingOptions
from seq2seq.onnx import OnnxTranscriber, load
from seq2seq.onnx.export import TOLERANCE, export
from seq2seq.tasks.speech import SpeechTranscriber, train_speech
from tests.cli.test_cli import run_cli
from tests.onnx.test_onnx import without_torch
from tests.tasks.test_speech import HELD_OUT_VOICE, TINY, TRAIN_VOICES, WORDS

pytestmark = pytest.mark.slow  # the model trains for 150 epochs (about 13 s)
Exported = tuple[SpeechTranscriber, OnnxTranscriber, Path]
STRATEGIES = [DecodingOptions(), DecodingOptions(strategy="beam", beam_size=3, n_best=2),
              DecodingOptions(ctc_weight=0.0), DecodingOptions(strategy="beam", beam_size=3, ctc_weight=1.0),
              DecodingOptions(strategy="ctc")]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """A tiny speech model with a CTC head trained on eight words in three voices (decoding in fp32), its export, and
    their folder (with train.tsv and held_out.tsv, the words in a voice training never hears)."""
    if not espeak_available():
        pytest.skip("espeak-ng is not installed")
    folder = tmp_path_factory.mktemp("onnx-speech")
    write_speech_list(folder, "train", [(word, voice) for voice in TRAIN_VOICES for word in WORDS], seed=1)
    write_speech_list(folder, "held_out", [(word, HELD_OUT_VOICE) for word in WORDS], seed=2)
    config = apply_overrides(Config(), ["train.epochs=150", "model.ctc_weight=0.5", *TINY])
    train_speech(config, read_audio_list(folder / "train.tsv"), out_dir=folder / "run")
    transcriber = api.load_transcriber(folder / "run", precision="fp32")  # decoding as the export does
    export(folder / "run", folder / "export")
    onnx = load(folder / "export", threads=1)
    assert isinstance(onnx, OnnxTranscriber)
    return transcriber, onnx, folder


def wav_files(folder: Path) -> list[str]:
    return [pair.src for name in ("train", "held_out") for pair in read_audio_list(folder / f"{name}.tsv")]


@pytest.mark.parametrize("options", STRATEGIES, ids=["greedy", "beam", "decoder alone", "ctc prefix alone", "ctc"])
def test_transcripts_and_scores_equal_pytorch(exported: Exported, options: DecodingOptions) -> None:
    transcriber, onnx, folder = exported
    frames = [load_frames(path, transcriber.config.data.audio) for path in wav_files(folder)]
    mine, theirs = transcriber.decode_frames(frames, options), onnx.decode_frames(frames, options)
    assert [[h.tokens for h in found] for found in mine] == [[h.tokens for h in found] for found in theirs]
    assert np.allclose([h.log_prob for found in mine for h in found], [h.log_prob for found in theirs for h in found],
                       atol=1e-3, rtol=0)


def test_the_model_learned_and_the_manifest_says_what_the_graphs_hold(exported: Exported) -> None:
    transcriber, onnx, folder = exported
    pairs = read_audio_list(folder / "train.tsv")
    assert onnx.evaluate(pairs) == transcriber.evaluate(pairs)
    assert transcriber.evaluate(pairs)["cer"] < 50
    manifest = json.loads((folder / "export" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["runtime"] == "transcriber" and manifest["task"] == "speech"
    assert manifest["layout"]["ctc"] and manifest["layout"]["ctc_weight"] == 0.5
    assert manifest["check"]["fp32_max_difference"] <= TOLERANCE


def test_the_runtime_imports_no_torch(exported: Exported) -> None:
    """Without loading torch, the export reads WAV files and transcribes them, greedy and jointly by beam (torch is
    left importable: scipy, under librosa, would take a blocked torch for a loaded one)."""
    transcriber, _, folder = exported
    paths = wav_files(folder)[-4:]
    lines = without_torch(folder / "export", f"print(model.transcribe({paths!r}))",
                          f"print(model.transcribe({paths!r}, strategy='beam', beam_size=3))", block=False)
    assert lines == [repr(transcriber.transcribe(paths)), repr(transcriber.transcribe(paths, strategy="beam",
                                                                                        beam_size=3))]


def test_cli_transcribes_and_evaluates_with_the_export(exported: Exported) -> None:
    _, _, folder = exported
    paths = wav_files(folder)[-3:]
    outputs = [run_cli("transcribe", "--model", folder / "run", "--precision", "fp32", "--scores", *paths),
               run_cli("transcribe", "--model", folder / "export", "--scores", *paths)]
    assert outputs[0][0] == outputs[1][0] == 0, outputs
    assert [line.split("\t")[1] for line in outputs[0][1].splitlines()] == \
        [line.split("\t")[1] for line in outputs[1][1].splitlines()]
    scores = [run_cli("evaluate", "--model", folder / "run", "--precision", "fp32", "--data",
                      folder / "held_out.tsv", "--json"),
              run_cli("evaluate", "--model", folder / "export", "--data", folder / "held_out.tsv", "--json")]
    assert scores[0][0] == scores[1][0] == 0 and json.loads(scores[0][1]) == json.loads(scores[1][1])


def test_serve_transcribes_with_the_export_as_with_the_checkpoint(exported: Exported) -> None:
    """/v1/transcribe over a real socket gives the export's transcript, which is the checkpoint's."""
    pytest.importorskip("uvicorn")
    from tests.serve.test_serve import client_for

    transcriber, onnx, folder = exported
    paths = wav_files(folder)[-3:]
    with client_for({"checkpoint": transcriber, "export": onnx}) as client:
        texts = {name: [client.post(f"/v1/transcribe?model={name}", content=Path(path).read_bytes()).json()["text"]
                        for path in paths] for name in ("checkpoint", "export")}
        described = {entry["name"]: entry["runtime"] for entry in client.get("/v1/models").json()["models"]}
    assert texts["checkpoint"] == texts["export"] == transcriber.transcribe(paths), texts
    assert described == {"checkpoint": "pytorch", "export": "onnxruntime"}
