"""Checkpoints and an export written by commit 72ea925 (fixtures/v2: classifiers with and without the bag of words, a
speech model, the repeat architecture, copy + coverage, a two-model ensemble and an ONNX export) still load through
the public entry points and give exactly the outputs they gave then, in fp32. fixtures/v2/README.md says how they were
made."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from seq2seq import api

FIXTURES = Path(__file__).parent / "fixtures" / "v2"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
BEAM: dict[str, Any] = EXPECTED["beam"]  # strategy beam, beam_size 5, n_best 1


def loaded(name: str, kind: str) -> tuple[Any, dict[str, Any]]:
    """The fixture's model (checked to be of the class named kind) and what it gave at 72ea925."""
    expected = EXPECTED[name]
    paths = [FIXTURES / file for file in expected.get("files", [expected.get("file")])]
    model = api.load(paths[0] if len(paths) == 1 else paths, device="cpu", precision="fp32")
    assert type(model).__name__ == kind
    return model, expected


def assert_decodes_as_recorded(model: Any, expected: dict[str, Any]) -> None:
    texts = expected["inputs"]
    assert model.translate(texts) == expected["greedy"]
    assert model.translate(texts, **BEAM) == expected["beam"]


@pytest.mark.parametrize("name", ["classify", "classify_bag"])
def test_classifiers_classify_as_they_did(name: str) -> None:
    classifier, expected = loaded(name, "TextClassifier")
    assert classifier.config.model.bag_of_words is (name == "classify_bag")
    assert classifier.classify(expected["inputs"]) == expected["labels"]
    found = classifier.classify_detailed(expected["inputs"], top_k=EXPECTED["top_k"])
    assert [c.label for c in found] == expected["labels"]
    for classification, top in zip(found, expected["top"], strict=True):
        assert [label for label, _ in classification.top] == [label for label, _ in top]
        for (_, probability), (_, recorded) in zip(classification.top, top, strict=True):
            assert abs(probability - recorded) < 1.5e-6  # equal to 6 decimals (numpy's assert_almost_equal)


def test_the_speech_model_transcribes_as_it_did() -> None:
    pytest.importorskip("librosa")
    pytest.importorskip("soundfile")
    transcriber, expected = loaded("speech", "SpeechTranscriber")
    wavs = [FIXTURES / wav for wav in expected["inputs"]]
    assert transcriber.transcribe(wavs) == expected["greedy"]
    assert transcriber.transcribe(wavs, **BEAM) == expected["beam"]


@pytest.mark.parametrize("name", ["repeat", "copy_coverage"])
def test_translation_models_decode_as_they_did(name: str) -> None:
    translator, expected = loaded(name, "Translator")
    model = translator.config.model
    assert (model.arch, model.copy, model.coverage) == (("repeat", False, False) if name == "repeat" else
                                                        ("attention", True, True))
    assert_decodes_as_recorded(translator, expected)


def test_the_ensemble_decodes_as_it_did() -> None:
    ensemble, expected = loaded("ensemble", "Translator")
    assert type(ensemble.model).__name__ == "Ensemble"
    assert_decodes_as_recorded(ensemble, expected)


def test_the_onnx_export_decodes_as_it_did() -> None:
    pytest.importorskip("onnxruntime")
    from seq2seq import onnx

    expected = EXPECTED["onnx"]
    exported = onnx.load(FIXTURES / expected["dir"], threads=1)
    assert type(exported).__name__ == "OnnxTranslator"
    assert_decodes_as_recorded(exported, expected)
