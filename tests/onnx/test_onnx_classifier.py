"""An exported classifier: PyTorch's labels, probabilities and attention weights on ONNX Runtime, batched or not,
on the command line too, without torch; what has no graph (the bag of words of older runs) is refused in one line."""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from seq2seq.errors import CheckpointError
from seq2seq.onnx import OnnxClassifier, load
from seq2seq.onnx.export import TOLERANCE, export
from seq2seq.tasks.classify import TextClassifier, train_classifier
from tests.cli.test_classify_cli import write_labelled
from tests.cli.test_cli import one_line_error, run_cli
from tests.onnx.test_onnx import without_torch
from tests.tasks.test_classification import majority_pairs, tiny_config
from tests.test_compatibility_v2 import FIXTURES

MAX_LENGTH = 12  # data.max_src_length: the last texts are cut to it, in both runtimes
ENDS = "a " * 12 + "b c"  # over MAX_LENGTH: data.truncation=head_tail keeps its last 6 tokens, b c among them
TEXTS = [pair.src for pair in majority_pairs(60, 3)] + ["", "b", "zz unknown a", "a b " * 12, "c " * 30, ENDS]
TRAIN = ["train.epochs=4", "train.device=cpu", "model.num_layers=2", f"data.max_src_length={MAX_LENGTH}",
         "data.truncate_src=true", "data.truncation=head_tail"]
Trained = tuple[TextClassifier, OnnxClassifier, Path]


def trained(folder: Path, *overrides: str) -> tuple[TextClassifier, OnnxClassifier]:
    """A tiny classifier trained on the majority-symbol task (about a second), and its export."""
    config = tiny_config(*TRAIN, *overrides)
    classifier = train_classifier(config, majority_pairs(600, 1), majority_pairs(50, 2), folder / "run")
    export(folder / "run", folder / "export")
    onnx = load(folder / "export", threads=1)
    assert isinstance(onnx, OnnxClassifier)
    return classifier, onnx


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """An attention-pooling LSTM classifier, its export, and their folder."""
    folder = tmp_path_factory.mktemp("onnx-classify")
    return (*trained(folder), folder)


def assert_same_classifications(classifier: TextClassifier, onnx: OnnxClassifier) -> None:
    """The same labels, ranked alike, on every text; probabilities and attention weights within TOLERANCE."""
    for mine, theirs in zip(classifier.classify_detailed(TEXTS, top_k=3), onnx.classify_detailed(TEXTS, top_k=3),
                            strict=True):
        assert [label for label, _ in mine.top] == [label for label, _ in theirs.top]
        assert np.allclose([p for _, p in mine.top], [p for _, p in theirs.top], atol=TOLERANCE, rtol=0)
        assert mine.tokens == theirs.tokens and len(mine.tokens) <= MAX_LENGTH
        assert (mine.attention is None) == (theirs.attention is None)
        if mine.attention is not None and theirs.attention is not None:
            assert np.allclose(mine.attention.numpy(), theirs.attention, atol=TOLERANCE, rtol=0)


def test_export_equals_pytorch(exported: Trained) -> None:
    classifier, onnx = exported[:2]
    assert onnx.manifest["task"] == "classify" and onnx.manifest["layout"] == {"classes": 3, "attention": True}
    assert onnx.manifest["check"]["fp32_max_difference"] <= TOLERANCE and "decoding" not in onnx.manifest
    assert onnx.labels == classifier.labels and onnx.config == classifier.config
    assert_same_classifications(classifier, onnx)
    assert onnx.classify_detailed([ENDS])[0].tokens == ["a"] * 10 + ["b", "c"]  # head: ["a"] * 12
    found = onnx.classify_detailed(TEXTS[:3])
    assert all(item.attention is not None and item.attention.shape == (len(item.tokens),) for item in found)


def test_the_model_learned_and_evaluate_equals_pytorch(exported: Trained) -> None:
    classifier, onnx = exported[:2]
    pairs = majority_pairs(100, 4)
    scores = onnx.evaluate(pairs)
    assert scores == classifier.evaluate(pairs) and scores["accuracy"] >= 70, scores


def test_batched_equals_one_by_one(exported: Trained) -> None:
    onnx = exported[1]
    batched = onnx.classify_detailed(TEXTS, top_k=2, batch_size=7)
    alone = [onnx.classify_detailed([text], top_k=2, batch_size=1)[0] for text in TEXTS]
    for one, other in zip(batched, alone, strict=True):
        assert one.top[0][0] == other.top[0][0] and one.tokens == other.tokens
        assert np.allclose([p for _, p in one.top], [p for _, p in other.top], atol=1e-5, rtol=0)
        assert one.attention is not None and other.attention is not None
        assert np.allclose(one.attention, other.attention, atol=1e-5, rtol=0)
    with pytest.raises(TypeError, match="list of strings"):
        onnx.classify("a b")


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [["model.pooling=last", "model.rnn=gru"], ["model.pooling=mean"],
                                       ["model.pooling=max", "model.rnn=gru", "model.bidirectional=false"],
                                       ["model.pooling=concat", "model.rnn=gru", "model.num_layers=2"]],
                         ids=["last-gru", "mean-lstm", "max-gru-one-direction", "concat-gru-two-layers"])
def test_every_pooling_exports_with_equal_outputs(tmp_path: Path, overrides: list[str]) -> None:
    classifier, onnx = trained(tmp_path, *overrides)
    assert onnx.manifest["layout"]["attention"] is False
    assert_same_classifications(classifier, onnx)


def test_int8_export_classifies(exported: Trained, tmp_path: Path) -> None:
    manifest = export(exported[2] / "run", tmp_path / "int8", int8=True)
    assert manifest["precision"] == "int8" and "int8_max_difference" in manifest["check"]
    labels = load(tmp_path / "int8").classify(TEXTS)
    same = sum(a == b for a, b in zip(labels, exported[0].classify(TEXTS), strict=True))
    assert same >= 0.8 * len(TEXTS), labels


def test_cli_exports_classifies_and_evaluates(exported: Trained, tmp_path: Path) -> None:
    """export prints how to use it; classify --model EXPORT writes the checkpoint's lines, evaluate its scores; the
    export is no language model."""
    out = tmp_path / "export"
    code, printed, err = run_cli("export", "--model", exported[2] / "run", "--out", out)
    assert code == 0, err
    assert f"try: seq2seq classify --model {out}" in printed
    inputs = tmp_path / "in.txt"
    inputs.write_text("\n".join(TEXTS[:8] + TEXTS[-3:]) + "\n", encoding="utf-8")
    data = write_labelled(tmp_path / "test.tsv", majority_pairs(40, 5))
    outputs, scores = [], []
    for model in (exported[2] / "run", out):
        code, printed, err = run_cli("classify", "--model", model, "--input", inputs, "--top-k", "2", "--scores")
        assert code == 0, err
        outputs.append(printed)
        code, printed, err = run_cli("evaluate", "--model", model, "--data", data, "--json")
        assert code == 0, err
        scores.append(json.loads(printed))
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == 11
    if importlib.util.find_spec("matplotlib"):
        code, _, err = run_cli("classify", "--model", out, "--input", inputs, "--plot-attention", tmp_path / "plots")
        assert code == 0, err
        assert len(list((tmp_path / "plots").glob("*.png"))) == 11
    assert scores[0] == scores[1] and scores[0]["accuracy"] > 0
    message = one_line_error(*run_cli("generate", "--model", out)[::2])
    assert "an exported classifier, not a language model (use seq2seq classify)" in message


def test_runtime_imports_no_torch(exported: Trained) -> None:
    """With torch unimportable, the export loads and classifies, and torch is never loaded."""
    lines = without_torch(exported[2] / "export", f"print(model.classify({TEXTS!r}))",
                          f"print(model.classify_detailed({TEXTS[:1]!r}, top_k=3)[0].top)")
    assert lines[0] == repr(exported[0].classify(TEXTS))
    want = exported[0].classify_detailed(TEXTS[:1], top_k=3)[0].top
    assert [label for label, _ in ast.literal_eval(lines[1])] == [label for label, _ in want]


def test_a_manifest_without_the_graph_is_a_one_line_error(exported: Trained, tmp_path: Path) -> None:
    copy = tmp_path / "export"
    shutil.copytree(exported[2] / "export", copy)
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    (copy / "manifest.json").write_text(json.dumps({**manifest, "graphs": {}}), encoding="utf-8")
    with pytest.raises(CheckpointError, match="damaged manifest"):
        load(copy)


def test_bag_of_words_is_refused_before_writing(tmp_path: Path) -> None:
    """The bag of words (TF-IDF and a linear SVM) of older runs has no graph: export says so in one line, and writes
    nothing."""
    code, _, err = run_cli("export", "--model", FIXTURES / "classify_bag.safetensors", "--out", tmp_path / "export")
    message = one_line_error(code, err)
    assert code == 1 and "classify_bag.safetensors" in message and "model.bag_of_words" in message, message
    assert "export a classifier trained without it" in message and not (tmp_path / "export").exists()


def test_serve_classifies_with_the_export_as_with_the_checkpoint(exported: Trained) -> None:
    """/v1/classify over a real socket gives the export's labels, which are the checkpoint's."""
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    from seq2seq.serve import load_models
    from tests.serve.test_serve import client_for

    models, _ = load_models([f"checkpoint={exported[2] / 'run'}", f"export={exported[2] / 'export'}"])
    texts = ["a a b", "c b c c", "b"]
    with client_for(models) as client:
        labels = {name: [found["label"] for found in client.post("/v1/classify", json={
            "model": name, "texts": texts}).json()["classifications"]] for name in models}
        described = {entry["name"]: entry["runtime"] for entry in client.get("/v1/models").json()["models"]}
    assert labels["export"] == labels["checkpoint"] == exported[0].classify(texts)
    assert described == {"checkpoint": "pytorch", "export": "onnxruntime"}
