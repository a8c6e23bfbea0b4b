"""An exported ensemble decodes on ONNX Runtime as the PyTorch Ensemble does: the same greedy and beam outputs, one
manifest listing the members, shared vocabularies required, no torch imported."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

from seq2seq import api, cli
from seq2seq.config import Config, apply_overrides
from seq2seq.decoding.options import DecodingOptions
from seq2seq.errors import CheckpointError
from seq2seq.onnx import OnnxTranslator, load
from seq2seq.onnx.export import export
from seq2seq.onnx.model import file_sha256
from seq2seq.training import checkpoint
from tests.conftest import toy_pairs
from tests.onnx.test_onnx import TEXTS, TINY, assert_same_outputs, assert_same_perplexity, translate_without_torch

Runs = tuple[api.Translator, OnnxTranslator, list[Path]]


def train_member(folder: Path, *overrides: str) -> Path:
    """A tiny model of the reversal task (about 40 steps); the same data gives every member the same vocabularies."""
    api.train(apply_overrides(Config(), [*TINY, *overrides]), toy_pairs("reverse", 600, seed=1), out_dir=folder)
    return folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Two members (an LSTM and a GRU, other seeds), the PyTorch ensemble of them and its export."""
    folder = tmp_path_factory.mktemp("onnx-ensemble")
    runs = [train_member(folder / "lstm", "train.seed=1"),
            train_member(folder / "gru", "train.seed=2", "model.rnn=gru")]
    export(runs, folder / "export")
    return api.load_ensemble(runs, device="cpu"), load(folder / "export", threads=1), runs


@pytest.mark.parametrize("options", [DecodingOptions(), DecodingOptions(strategy="beam", beam_size=5, n_best=3)],
                         ids=["greedy", "beam-nbest3"])
def test_exported_ensemble_equals_pytorch(exported: Runs, options: DecodingOptions) -> None:
    """Token-identical outputs, scores and averaged attention within 1e-4; and not simply one member's outputs."""
    translator, onnx, runs = exported
    assert onnx.attends() and translator.attends()
    assert_same_outputs(translator, onnx, options)
    assert_same_perplexity(translator, onnx)
    alone = [api.load_translator(run, device="cpu").translate(TEXTS, options) for run in runs]
    assert all(outputs != onnx.translate(TEXTS, options) for outputs in alone)


@pytest.mark.parametrize("members", [(["model.copy=true", "model.attention=dot"],
                                      ["model.copy=true", "model.coverage=true", "model.rnn=gru"]),
                                     (["model.arch=context"], [])], ids=["copy-coverage", "context-attention"])
def test_other_architectures_export_as_ensembles(tmp_path: Path, members: tuple[list[str], list[str]]) -> None:
    """Copying members (log-probabilities over the source's extra ids too), and a member without attention: then
    the ensemble has no attention weights to show, in both runtimes."""
    runs = [train_member(tmp_path / str(seed), f"train.seed={seed}", *overrides)
            for seed, overrides in enumerate(members, start=1)]
    export(runs, tmp_path / "export")
    translator, onnx = api.load_ensemble(runs, device="cpu"), load(tmp_path / "export", threads=1)
    assert onnx.attends() == translator.attends() == ("model.arch=context" not in members[0])
    for options in (DecodingOptions(), DecodingOptions(strategy="beam", beam_size=3, n_best=2)):
        assert_same_outputs(translator, onnx, options)


def test_manifest_lists_the_members(exported: Runs) -> None:
    """One manifest and model.json; each member's graphs in members/I with their hashes and source checkpoint."""
    folder = exported[2][0].parent / "export"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "seq2seq-onnx-ensemble-1" and "graphs" not in manifest
    assert sorted(path.name for path in folder.iterdir()) == ["manifest.json", "members", "model.json"]
    assert [member["directory"] for member in manifest["members"]] == ["members/0", "members/1"]
    for member, run in zip(manifest["members"], exported[2], strict=True):
        assert member["checkpoint"]["sha256"] == file_sha256(checkpoint.resolve_checkpoint(run))
        assert {name: file_sha256(folder / member["directory"] / name) for name in member["graphs"]} == \
            member["graphs"]
    assert [member["layout"]["state"][:2] for member in manifest["members"]] == [["hidden0", "hidden1"],
                                                                                 ["hidden0", "feed"]]
    assert manifest["check"]["fp32_max_difference"] <= manifest["check"]["tolerance"] == 1e-4


def test_sampling_is_seeded_and_top_1_is_greedy(exported: Runs) -> None:
    translator, onnx, _ = exported
    sample = DecodingOptions(strategy="sample", seed=3, temperature=0.8, num_samples=2)
    first = onnx.translate(TEXTS, sample)
    assert first == onnx.translate(TEXTS, sample) and all(len(found) == 2 for found in first)
    assert onnx.translate(TEXTS, DecodingOptions(strategy="sample", seed=1, top_k=1)) == translator.translate(TEXTS)


def test_members_with_other_vocabularies_are_a_one_line_error(exported: Runs, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    chars = train_member(tmp_path / "chars", "data.src.kind=char", "train.max_steps=2")
    with pytest.raises(CheckpointError, match=f"^{chars}: its tokenizers, vocabularies or copy setting differ"):
        export([exported[2][0], chars], tmp_path / "export")
    assert cli.main(["export", "--model", str(exported[2][0]), str(chars), "--out", str(tmp_path / "export")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "the models of an ensemble must share them" in error
    assert not (tmp_path / "export").exists()


def test_cli_exports_int8_members(exported: Runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """export --model A B --int8 quantizes every member; translate --model EXPORT then runs the ensemble."""
    out = tmp_path / "int8"
    assert cli.main(["export", "--model", *map(str, exported[2]), "--out", str(out), "--int8"]) == 0
    assert "(int8, opset 17)" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    fp32 = exported[1].manifest["members"]
    assert manifest["precision"] == "int8" and "int8_max_difference" in manifest["check"]
    assert all(mine["graphs"] != theirs["graphs"] for mine, theirs in zip(manifest["members"], fp32, strict=True))
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    assert cli.main(["translate", "--model", str(out), "--input", str(source)]) == 0
    outputs = capsys.readouterr().out.splitlines()
    same = sum(a == b for a, b in zip(outputs, exported[0].translate(TEXTS), strict=True))
    assert same >= len(TEXTS) // 2, outputs[:5]


def test_ensemble_runtime_imports_no_torch(exported: Runs) -> None:
    """With torch unimportable, the exported ensemble loads and decodes with every strategy."""
    assert translate_without_torch(exported[2][0].parent / "export")[0] == exported[0].translate(["a b c"])[0]


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m["members"][1].update(directory="../elsewhere"), "must be a folder inside the export"),
    (lambda m: m["members"][0].pop("layout"), "lacks its graphs' hashes or its layout"),
    (lambda m: m.update(members=[]), "without its list of members"),
    (lambda m: m.update(format="seq2seq-onnx-1"), "lacks its graphs' hashes or its layout"),
], ids=["outside", "no-layout", "no-members", "wrong-format"])
def test_damaged_ensemble_manifests_are_one_line_errors(exported: Runs, tmp_path: Path,
                                                        change: Callable[[dict], object], message: str) -> None:
    copy = tmp_path / "export"
    shutil.copytree(exported[2][0].parent / "export", copy)
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    change(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(CheckpointError, match=message):
        load(copy, threads=1)


def test_an_empty_ensemble_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="needs at least one model"):
        export([], tmp_path / "export")


def test_an_export_among_several_models_is_a_one_line_error(exported: Runs, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """translate --model EXPORT RUN cannot mix runtimes: the error says to export the checkpoints together."""
    source = tmp_path / "in.txt"
    source.write_text("a b c\n", encoding="utf-8")
    export_dir = exported[2][0].parent / "export"
    assert cli.main(["translate", "--model", str(export_dir), str(exported[2][1]), "--input", str(source)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{export_dir}: an exported model cannot join" in error
    assert "seq2seq export --model A B --out DIR" in error
