"""ONNX export and the torch-free runtime: the same outputs as PyTorch, no torch imported, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from conftest import toy_pairs

from seq2seq import api, cli, decoding, search
from seq2seq.config import Config, apply_overrides
from seq2seq.errors import CheckpointError, ConfigError
from seq2seq.export import export
from seq2seq.onnx import OnnxTranslator, load
from seq2seq.options import DecodingOptions, processor_specs

TINY = ["data.src.kind=word", "data.tgt.kind=word", "model.embedding_size=16", "model.hidden_size=32",
        "model.dropout=0", "train.epochs=2", "data.batch_size=32", "train.device=cpu", "train.precision=fp32"]
ARCHITECTURES = {
    "attention-lstm": [],
    "attention-gru-bahdanau": ["model.rnn=gru", "model.attention=bahdanau"],
    "context-lstm": ["model.arch=context"],
    "repeat-gru": ["model.arch=repeat", "model.rnn=gru"],
    "copy-dot": ["model.copy=true", "model.attention=dot"],
    "coverage-gru-2-layers": ["model.coverage=true", "model.rnn=gru", "model.num_layers=2"],
}
TEXTS = [pair.src for pair in toy_pairs("reverse", 40, seed=7)] + ["a", "j " * 16, "zz unknown a b"]
STRATEGIES = [DecodingOptions(),
              DecodingOptions(strategy="beam", beam_size=5, n_best=3),
              DecodingOptions(strategy="beam", beam_size=3, length_penalty=0.0, no_repeat_ngram_size=2,
                              min_length=4, max_length=9, ban_unk=True)]


def trained(folder: Path, overrides: list[str]) -> tuple[api.Translator, OnnxTranslator]:
    """A tiny model trained on the reversal task, and its export."""
    config = apply_overrides(Config(), TINY + overrides)
    translator = api.train(config, toy_pairs("reverse", 600, seed=1), out_dir=folder / "run")
    export(folder / "run", folder / "export")
    return translator, load(folder / "export", threads=1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[api.Translator, OnnxTranslator, Path]:
    folder = tmp_path_factory.mktemp("onnx")
    return (*trained(folder, []), folder)


def assert_same_outputs(translator: api.Translator, onnx: OnnxTranslator, options: DecodingOptions) -> None:
    """Token-identical hypotheses, scores and attention within 1e-4."""
    for mine, theirs in zip(translator.translate_detailed(TEXTS, options), onnx.translate_detailed(TEXTS, options),
                            strict=True):
        assert [t.tokens for t in mine] == [t.tokens for t in theirs]
        assert np.allclose([t.log_prob for t in mine], [t.log_prob for t in theirs], atol=1e-4)
        for a, b in zip(mine, theirs, strict=True):
            assert (a.attention is None) == (b.attention is None)
            assert a.attention is None or np.allclose(a.attention.numpy(), b.attention, atol=1e-4)


@pytest.mark.parametrize("options", STRATEGIES, ids=["greedy", "beam-nbest3", "beam-constrained"])
def test_onnx_outputs_equal_pytorch(exported: tuple[api.Translator, OnnxTranslator, Path],
                                    options: DecodingOptions) -> None:
    assert_same_outputs(exported[0], exported[1], options)


@pytest.mark.slow
@pytest.mark.parametrize("overrides", list(ARCHITECTURES.values())[1:], ids=list(ARCHITECTURES)[1:])
def test_every_architecture_exports_with_equal_outputs(tmp_path: Path, overrides: list[str]) -> None:
    translator, onnx = trained(tmp_path, overrides)
    for options in STRATEGIES[:2]:
        assert_same_outputs(translator, onnx, options)


def test_processors_equal_decodings(exported: tuple[api.Translator, OnnxTranslator, Path]) -> None:
    """The numpy logits processors give what seq2seq.decoding's give, for every knob that picks one."""
    generator = torch.Generator().manual_seed(0)
    scores, history = torch.randn(6, 30, generator=generator), torch.randint(4, 30, (6, 7), generator=generator)
    options = [DecodingOptions(min_length=9, no_repeat_ngram_size=2, ban_unk=True),
               DecodingOptions(strategy="sample", temperature=0.7, top_k=5, top_p=0.8),
               DecodingOptions(no_repeat_ngram_size=1)]
    for option in options:
        for name, values in processor_specs(option):
            want = decoding.PROCESSORS[name](scores, history, **values).numpy()
            assert np.array_equal(search.PROCESSORS[name](scores.numpy(), history.numpy(), **values), want), name


def test_sampling_is_reproducible_and_valid(exported: tuple[api.Translator, OnnxTranslator, Path]) -> None:
    """Sampling runs on numpy's generator, not torch's, so the same seed gives other draws than in PyTorch (the
    bits differ); what holds in both: the same seed gives the same texts, and top_k=1 is greedy."""
    onnx = exported[1]
    sample = DecodingOptions(strategy="sample", seed=3, temperature=0.8, top_p=0.9, num_samples=2)
    first = onnx.translate_detailed(TEXTS, sample)
    assert [[t.tokens for t in found] for found in first] == \
        [[t.tokens for t in found] for found in onnx.translate_detailed(TEXTS, sample)]
    assert all(t.tokens and 0 not in t.tokens and 2 not in t.tokens for found in first for t in found)
    greedy = DecodingOptions(strategy="sample", seed=1, top_k=1)
    assert onnx.translate(TEXTS, greedy) == onnx.translate(TEXTS) == exported[0].translate(TEXTS, greedy)


def test_runtime_imports_no_torch(exported: tuple[api.Translator, OnnxTranslator, Path]) -> None:
    """With torch unimportable, the export loads and translates with every strategy, and torch is never loaded."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "import seq2seq.onnx\n"
            f"model = seq2seq.onnx.load({str(exported[2] / 'export')!r})\n"
            "print(model.translate(['a b c'], strategy='beam', n_best=2), model.translate(['a b c']),\n"
            "      model.translate(['a b c'], strategy='sample', seed=1))\n"
            "del sys.modules['torch']\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert exported[0].translate(["a b c"])[0] in result.stdout


def test_cli_exports_and_translates_with_the_export(exported: tuple[api.Translator, OnnxTranslator, Path],
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS[:5]) + "\n", encoding="utf-8")
    assert cli.main(["export", "--model", str(exported[2] / "run"), "--out", str(tmp_path / "export")]) == 0
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert manifest["check"]["fp32_max_difference"] <= manifest["check"]["tolerance"]
    capsys.readouterr()
    outputs = []
    for model in (exported[2] / "run", tmp_path / "export"):
        assert cli.main(["translate", "--model", str(model), "--input", str(source), "--strategy", "beam",
                         "--n-best", "2"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == 10


def test_corrupted_graph_or_manifest_is_a_one_line_error(exported: tuple[api.Translator, OnnxTranslator, Path],
                                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "export"
    copy.mkdir()
    for file in (exported[2] / "export").iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    graph = copy / "step.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"step\.onnx: corrupted or changed"):
        load(copy)
    (copy / "manifest.json").write_text("{not json", encoding="utf-8")
    assert cli.main(["translate", "--model", str(copy), "--input", str(copy / "model.json")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "manifest.json: unreadable manifest" in error


def test_language_models_are_refused_clearly(tmp_path: Path) -> None:
    from seq2seq.generation import train_language_model

    config = apply_overrides(Config(), ["task=lm", "model.hidden_size=16", "model.embedding_size=8",
                                        "train.epochs=1", "data.window=20", "train.device=cpu"])
    train_language_model(config, ["abc abd abe " * 20], out_dir=tmp_path / "lm")
    with pytest.raises(ConfigError, match="export supports translation models"):
        export(tmp_path / "lm", tmp_path / "export")


def test_int8_export_translates(exported: tuple[api.Translator, OnnxTranslator, Path], tmp_path: Path) -> None:
    manifest = export(exported[2] / "run", tmp_path / "int8", int8=True)
    assert manifest["precision"] == "int8" and "int8_max_difference" in manifest["check"]
    outputs = load(tmp_path / "int8").translate(TEXTS)
    same = sum(a == b for a, b in zip(outputs, exported[0].translate(TEXTS), strict=True))
    assert same >= len(TEXTS) // 2, outputs[:5]

