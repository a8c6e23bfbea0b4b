"""Checkpoints written before the metadata schema (fixtures/v1, with the outputs they gave then) still load and
decode, score and generate exactly as they did, in fp32."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seq2seq import api
from seq2seq.data.metadata import ModelMetadata
from seq2seq.errors import CheckpointError
from seq2seq.tasks import registry
from seq2seq.tasks.lm import TextGenerator
from seq2seq.training.checkpoint import load_checkpoint

FIXTURES = Path(__file__).parent / "fixtures" / "v1"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))


def translator(name: str) -> api.Translator:
    loaded = api.load(FIXTURES / f"{name}.safetensors", device="cpu")
    assert isinstance(loaded, api.Translator)
    return loaded


def recorded_inputs() -> list[str]:
    """The 30 held-out sources the fixtures were decoded on (the reversal pairs of make-up seed 3)."""
    import random

    rng = random.Random(3)
    pairs = []
    for _ in range(300):
        symbols = [rng.choice("abcdefghij") for _ in range(rng.randint(3, 7))]
        pairs.append(" ".join(symbols))
    return pairs[270:]


@pytest.mark.parametrize("name", ["attention", "context"])
def test_old_translation_checkpoints_decode_as_they_did(name: str) -> None:
    model, expected, texts = translator(name), EXPECTED[name], recorded_inputs()
    assert model.translate(texts) == expected["greedy"]
    assert model.translate(texts, strategy="beam", beam_size=3, n_best=2) == expected["beam"]
    assert model.translate(texts, strategy="sample", seed=7, num_samples=2, temperature=0.8) == expected["sample"]


def test_old_language_model_checkpoint_generates_as_it_did() -> None:
    generator = api.load(FIXTURES / "lm.safetensors", device="cpu")
    assert isinstance(generator, TextGenerator)
    assert generator.generate("a b", temperature=0, max_length=12) == EXPECTED["lm"]["greedy"]
    assert generator.generate("c", num=2, temperature=0.9, max_length=12, seed=5) == EXPECTED["lm"]["sample"]


def test_metadata_of_every_version_reads_the_same() -> None:
    """The old language-model shape (tokenizer, vocab) and the new one (tokenizers, vocabs) give equal metadata."""
    _, values = load_checkpoint(FIXTURES / "lm.safetensors")
    assert "tokenizer" in values and "tokenizers" not in values  # really the old shape
    old = ModelMetadata.from_dict(values, "lm")
    assert ModelMetadata.from_dict(old.to_dict(), "lm").to_dict() == old.to_dict()
    assert old.task == "lm" and len(old.vocabs) == 1


def test_malformed_metadata_is_a_checkpoint_error_naming_the_file() -> None:
    _, values = load_checkpoint(FIXTURES / "attention.safetensors")
    del values["vocabs"]
    with pytest.raises(CheckpointError, match=r"^broken\.safetensors: .*incomplete or malformed"):
        ModelMetadata.from_dict(values, "broken.safetensors")
    _, values = load_checkpoint(FIXTURES / "attention.safetensors")
    values["tokenizers"] = values["tokenizers"][:1]
    with pytest.raises(CheckpointError, match=r"^broken\.safetensors: task seq2seq needs 2 tokenizer"):
        registry.get("seq2seq").check_sides(ModelMetadata.from_dict(values, "broken.safetensors"),
                                            "broken.safetensors")
