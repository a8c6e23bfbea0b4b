"""ONNX export and the torch-free runtime: the same outputs as PyTorch, for translation and language models, no torch
imported, one-line errors, an export that appears whole or not at all."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from seq2seq import api, cli
from seq2seq.config import Config, apply_overrides
from seq2seq.data.pairs import Pair
from seq2seq.data.vocab import BOS_ID
from seq2seq.decoding import search
from seq2seq.decoding.numpy_arrays import NumpyArrays
from seq2seq.decoding.options import DecodingOptions, generation_options
from seq2seq.errors import CheckpointError, ConfigError
from seq2seq.onnx import OnnxGenerator, OnnxTranslator, graphs, load
from seq2seq.onnx import export as export_module
from seq2seq.onnx.export import export
from seq2seq.tasks.lm import TextGenerator, train_language_model
from tests.conftest import toy_pairs

TINY = ["data.src.kind=word", "data.tgt.kind=word", "model.embedding_size=16", "model.hidden_size=32",
        "model.dropout=0", "train.epochs=2", "data.batch_size=32", "train.device=cpu", "train.precision=fp32"]
ARCHITECTURES = {
    "attention-lstm": [],
    "attention-gru-bahdanau": ["model.rnn=gru", "model.attention=bahdanau"],
    "context-lstm": ["model.arch=context"],
    "repeat-gru": ["model.arch=repeat", "model.rnn=gru"],
    "copy-dot": ["model.copy=true", "model.attention=dot"],
    "coverage-gru-2-layers": ["model.coverage=true", "model.rnn=gru", "model.num_layers=2"],
    "transformer-2-layers-shared-tied": ["model.arch=transformer", "model.num_layers=2", "model.feedforward_size=64",
                                         "model.positions=learned", "model.tie_embeddings=true",
                                         "model.share_embeddings=true"],
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


def assert_same_perplexity(translator: api.Translator, onnx: OnnxTranslator) -> None:
    """The export feeds the references one step at a time; PyTorch reads them in one teacher-forced pass (a single
    model) or one step at a time (an ensemble); unknown source words included (a copying model's extended ids)."""
    pairs = [*toy_pairs("reverse", 30, seed=9), Pair("zz unknown", "unknown zz")]
    want = translator.perplexity(pairs)
    assert 1 < want < 1e3 and onnx.perplexity(pairs, batch_size=7) == pytest.approx(want, rel=1e-4)


def test_perplexity_equals_pytorch(exported: tuple[api.Translator, OnnxTranslator, Path]) -> None:
    assert_same_perplexity(*exported[:2])


def test_the_manifest_declares_the_state_as_earlier_exports_were_read(
        exported: tuple[api.Translator, OnnxTranslator, Path]) -> None:
    """The layout records each state tensor's axes; a layout without them (an earlier export's) is read with the same
    axes, by the names the RNN decoders' tensors had."""
    layout = exported[1].manifest["layout"]
    assert layout["state"] == ["hidden0", "hidden1", "feed", "attention"]
    assert layout["state_axes"]["hidden1"] == {"1": "batch"}
    assert layout["state_axes"]["attention"] == {"0": "batch", "1": "source"}
    earlier = {key: value for key, value in layout.items() if key != "state_axes"}
    assert graphs.state_axes(earlier) == graphs.state_axes(layout)


@pytest.mark.slow
@pytest.mark.parametrize("overrides", list(ARCHITECTURES.values())[1:], ids=list(ARCHITECTURES)[1:])
def test_every_architecture_exports_with_equal_outputs(tmp_path: Path, overrides: list[str]) -> None:
    translator, onnx = trained(tmp_path, overrides)
    for options in STRATEGIES[:2]:
        assert_same_outputs(translator, onnx, options)
    assert_same_perplexity(translator, onnx)


def test_models_trained_with_dropout_export_equal(tmp_path: Path) -> None:
    """Dropout is off in the exported graphs and in the PyTorch model the export is checked against (the configs
    train with dropout; export once compared against a model it had left in training mode)."""
    translator, onnx = trained(tmp_path, ["model.dropout=0.3", "model.num_layers=2"])
    assert_same_outputs(translator, onnx, STRATEGIES[0])
    assert json.loads((tmp_path / "export" / "manifest.json").read_text())["check"]["fp32_max_difference"] < 1e-4


def test_both_runtimes_share_the_text_front_end(exported: tuple[api.Translator, OnnxTranslator, Path],
                                               monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """The export truncates sources as the checkpoint says (data.truncate_src), and its evaluate warns as PyTorch's
    does when every input got the same output."""
    translator, onnx, _ = exported
    data = replace(translator.config.data, truncate_src=True, max_src_length=3)
    monkeypatch.setattr(translator, "config", replace(translator.config, data=data))
    monkeypatch.setattr(onnx, "metadata", replace(onnx.metadata, config=translator.config))
    found = [model.translate_detailed(["a b c d e f"])[0][0] for model in (translator, onnx)]
    assert found[0].src_tokens == found[1].src_tokens == ["a", "b", "c"] and found[0].tokens == found[1].tokens
    pairs = [Pair("a b", "b a"), Pair("c d", "d c")]
    for model in (translator, onnx):
        monkeypatch.setattr(model, "translate_detailed", lambda sources, *_: [[found[0]] for _ in sources])
        caplog.clear()
        model.evaluate(pairs)
        assert "every output is the same text" in caplog.text


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


def without_torch(export_dir: Path, *lines: str, block: bool = True) -> list[str]:
    """Run lines of Python in a subprocess where torch cannot be imported (without block: is not imported, for the
    libraries that look for torch among the loaded modules, as scipy does), after loading the export as `model`;
    the lines they print. Fails the test if torch, or array-api-compat (the search's torch namespace), got loaded."""
    code = "".join([
        "import sys; sys.modules['torch'] = None\n" if block else "import sys\n",
        "import seq2seq.onnx\n",
        f"model = seq2seq.onnx.load({str(export_dir)!r})\n",
        *(line + "\n" for line in lines),
        "del sys.modules['torch']\n" if block else "",
        "assert 'torch' not in sys.modules, 'torch was imported'\n",
        "assert 'array_api_compat' not in sys.modules, 'array_api_compat was imported'\n"])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def translate_without_torch(export_dir: Path) -> list[str]:
    """Without torch: load the export and decode 'a b c' greedy (the first line), with beam search (n-best 2) and by
    sampling."""
    return without_torch(export_dir, "print(model.translate(['a b c'])[0])",
                         "print(model.translate(['a b c'], strategy='beam', n_best=2), "
                         "model.translate(['a b c'], strategy='sample', seed=1))")


def test_the_runtime_modules_import_no_torch_and_no_metrics() -> None:
    """Loading an export of any task pulls neither torch (nor array-api-compat, the search's torch namespace) nor
    the scoring libraries (sacrebleu, rapidfuzz), which `evaluate` imports when it scores."""
    modules = ("seq2seq.onnx", "seq2seq.onnx.loading", "seq2seq.onnx.translator", "seq2seq.onnx.generator",
               "seq2seq.onnx.classifier", "seq2seq.onnx.transcriber", "seq2seq.onnx.ensemble")
    code = (f"import importlib, sys; [importlib.import_module(name) for name in {modules!r}]; "
            "print(sorted({'torch', 'array_api_compat', 'sacrebleu', 'rapidfuzz'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_runtime_imports_no_torch(exported: tuple[api.Translator, OnnxTranslator, Path]) -> None:
    """With torch unimportable, the export loads and translates with every strategy, and torch is never loaded."""
    assert translate_without_torch(exported[2] / "export")[0] == exported[0].translate(["a b c"])[0]


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


def test_int8_export_translates(exported: tuple[api.Translator, OnnxTranslator, Path], tmp_path: Path) -> None:
    manifest = export(exported[2] / "run", tmp_path / "int8", int8=True)
    assert manifest["precision"] == "int8" and "int8_max_difference" in manifest["check"]
    outputs = load(tmp_path / "int8").translate(TEXTS)
    same = sum(a == b for a, b in zip(outputs, exported[0].translate(TEXTS), strict=True))
    assert same >= len(TEXTS) // 2, outputs[:5]


# ---- language models

LM = ["task=lm", "model.hidden_size=32", "model.embedding_size=16", "model.dropout=0", "model.num_layers=2",
      "data.entries=line", "data.window=24", "data.batch_size=8", "train.max_steps=80", "train.lr=0.01",
      "train.device=cpu", "train.precision=fp32", "train.threads=1"]
LM_TEXT = ["the cat sat on the mat", "a dog ran in the park", "the sun is hot today", "my cat ate the fish"] * 10
PROMPTS = ["", "the", "a dog r", "zq unseen"]


def trained_lm(folder: Path, overrides: list[str]) -> tuple[TextGenerator, OnnxGenerator]:
    """A tiny character language model, and its export."""
    generator = train_language_model(apply_overrides(Config(), LM + overrides), LM_TEXT, out_dir=folder / "run")
    export(folder / "run", folder / "export")
    onnx = load(folder / "export", threads=1)
    assert isinstance(onnx, OnnxGenerator)
    return generator, onnx


@pytest.fixture(scope="module")
def exported_lm(tmp_path_factory: pytest.TempPathFactory) -> tuple[TextGenerator, OnnxGenerator, Path]:
    folder = tmp_path_factory.mktemp("onnx-lm")
    return (*trained_lm(folder, []), folder)


@pytest.mark.parametrize("overrides", [[], ["model.rnn=gru", "model.one_hot=true", "model.num_layers=1"],
                                       ["model.arch=transformer", "model.feedforward_size=64",
                                        "train.warmup_steps=10", "train.lr=0.003"],
                                       ["model.rnn=gru", "model.adaptive_softmax=[8,14]"]],
                         ids=["lstm-2-layers", "gru-one-hot", "transformer", "gru-adaptive-softmax"])
def test_lm_greedy_text_equals_pytorch(exported_lm: tuple[TextGenerator, OnnxGenerator, Path], tmp_path: Path,
                                       overrides: list[str]) -> None:
    """Greedy generation from the export writes exactly PyTorch's text, whether or not it may stop at </s>."""
    generator, onnx = trained_lm(tmp_path, overrides) if overrides else exported_lm[:2]
    assert onnx.manifest["task"] == "lm" and onnx.manifest["check"]["fp32_max_difference"] <= 1e-4
    for prompt in PROMPTS:
        for stop_at_end in (False, True):
            want = generator.generate(prompt, temperature=0, max_length=60, stop_at_end=stop_at_end)
            assert onnx.generate(prompt, temperature=0, max_length=60, stop_at_end=stop_at_end) == want
    assert any(len(text) > 5 for text in generator.generate("the", temperature=0, max_length=30))


def test_lm_sampling_draws_from_the_same_distributions(exported_lm: tuple[TextGenerator, OnnxGenerator, Path]
                                                       ) -> None:
    """What is proved for sampling: along a sampled text, every step's distribution after temperature, top-k and
    top-p (the processed logits, softmaxed) is PyTorch's within 1e-5, with the same support. Both runtimes then draw
    with the same exponential race (`_draw`), but from different random generators (torch's, numpy's), so the same
    seed is not expected to give the same text."""
    generator, onnx = exported_lm[:2]
    options = generation_options(None, {"temperature": 1.5, "top_k": 6, "top_p": 0.9})
    processors = search.build_processors(options)  # one set of functions, run on tensors and on arrays
    src = torch.tensor([[BOS_ID, *generator.vocab.encode(generator.tokenizer.tokenize("the c"))]])
    lengths = torch.tensor([src.size(1)])
    memory = generator.model.encode(src, lengths)
    state = generator.model.init_state(memory)
    onnx_memory = onnx.model.encode(src.numpy(), lengths.numpy())
    onnx_state = onnx.model.init_state(onnx_memory)
    tokens, history, draws = torch.tensor([BOS_ID]), torch.zeros((1, 0), dtype=torch.long), torch.Generator()
    widths = []  # tokens left possible at each step
    for _ in range(12):
        with torch.no_grad():
            logits, state = generator.model.step(tokens, state, memory)
        onnx_logits, onnx_state = onnx.model.step(tokens.numpy(), onnx_state, onnx_memory)
        for process in processors:
            logits = process(logits, history)
        for process in processors:
            onnx_logits = process(onnx_logits, history.numpy())
        mine, theirs = torch.softmax(logits, dim=-1).numpy(), NumpyArrays().softmax(onnx_logits)
        assert np.array_equal(mine > 0, theirs > 0) and np.abs(mine - theirs).max() < 1e-5
        widths.append(int((mine > 0).sum()))
        tokens = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=draws.manual_seed(len(history[0])))[:, 0]
        history = torch.cat([history, tokens[:, None]], dim=1)
    assert max(widths) <= 6 and sum(width > 1 for width in widths) >= 3, widths  # top-k cut; real choices made


def test_lm_seeded_sampling_is_reproducible(exported_lm: tuple[TextGenerator, OnnxGenerator, Path]) -> None:
    """The same seed gives the same texts, another seed others, and top_k=1 is greedy (in both runtimes)."""
    onnx = exported_lm[1]
    knobs = {"temperature": 0.9, "top_p": 0.95, "max_length": 30, "num": 3}
    first = onnx.generate("the", seed=5, **knobs)
    assert len(first) == 3 and all(text.startswith("the") for text in first)
    assert onnx.generate("the", seed=5, **knobs) == first
    assert onnx.generate("the", seed=6, **knobs) != first
    for model in exported_lm[:2]:  # </s> is masked before top-k: top_k=1 never leaves only a banned token
        assert model.generate("the", top_k=1, seed=2, max_length=30) == model.generate("the", temperature=0,
                                                                                      max_length=30)


def test_generate_cli_runs_on_the_export(exported_lm: tuple[TextGenerator, OnnxGenerator, Path],
                                         exported: tuple[api.Translator, OnnxTranslator, Path],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """generate --model EXPORT writes PyTorch's greedy text; the other task's export is a one-line error."""
    outputs = []
    for model in (exported_lm[2] / "run", exported_lm[2] / "export"):
        assert cli.main(["generate", "--model", str(model), "--prompt", "the", "--temperature", "0",
                         "--max-length", "40"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0].startswith("the")
    assert cli.main(["generate", "--model", str(exported_lm[2] / "export"), "--num", "2", "--seed", "1"]) == 0
    assert capsys.readouterr().out.count("%\n") == 1
    assert cli.main(["generate", "--model", str(exported[2] / "export")]) == 1
    assert "an exported translation model, not a language model" in capsys.readouterr().err
    assert cli.main(["translate", "--model", str(exported_lm[2] / "export"), "--input", __file__]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "an exported language model, not a translation model (use seq2seq generate)" in error


def test_an_export_refuses_to_adapt(exported_lm: tuple[TextGenerator, OnnxGenerator, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """evaluate --dynamic and generate --adapt take gradient steps: an export says so in one line."""
    text = tmp_path / "text.txt"
    text.write_text("the cat\n", encoding="utf-8")
    export = str(exported_lm[2] / "export")
    for argv in (["evaluate", "--model", export, "--data", str(text), "--dynamic"],
                 ["generate", "--model", export, "--prompt", "the", "--adapt"]):
        assert cli.main(argv) == 1
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "an exported language model cannot adapt as it reads" in error


@pytest.mark.slow
def test_lm_runtime_imports_no_torch(exported_lm: tuple[TextGenerator, OnnxGenerator, Path]) -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "import seq2seq.onnx\n"
            f"model = seq2seq.onnx.load({str(exported_lm[2] / 'export')!r})\n"
            "print(repr(model.generate('the', temperature=0, max_length=40)[0]))\n"
            "print(len(model.generate('a', seed=1, top_k=5, top_p=0.9, num=2, max_length=20)))\n"
            "del sys.modules['torch']\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    want = exported_lm[0].generate("the", temperature=0, max_length=40)[0]
    assert result.stdout.splitlines() == [repr(want), "2"]


# ---- writing the export directory


def test_export_appears_whole_or_not_at_all(exported_lm: tuple[TextGenerator, OnnxGenerator, Path], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    """A failed self-check leaves no --out and no temporary, and an earlier export untouched; a non-empty --out is
    refused unless --force, which replaces only an export."""
    run, out = str(exported_lm[2] / "run"), tmp_path / "export"
    with monkeypatch.context() as patched:
        patched.setattr(export_module, "TOLERANCE", -1.0)  # every difference is now too large
        with pytest.raises(CheckpointError, match="nothing was exported"):
            export(run, out)
        assert not list(tmp_path.iterdir())
        patched.undo()
        export(run, out)
        manifest = (out / "manifest.json").read_text()
        patched.setattr(export_module, "TOLERANCE", -1.0)
        with pytest.raises(CheckpointError, match="nothing was exported"):
            export(run, out, force=True)
        assert (out / "manifest.json").read_text() == manifest and [p.name for p in tmp_path.iterdir()] == ["export"]
    assert cli.main(["export", "--model", run, "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "exists and is not empty" in error and "--force" in error
    assert cli.main(["export", "--model", run, "--out", str(out), "--force"]) == 0
    assert "seq2seq generate --model" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["encoder.onnx", "manifest.json", "model.json", "step.onnx"]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ConfigError, match="not an export"):
        export(run, tmp_path / "notes", force=True)
    assert (tmp_path / "notes" / "keep.txt").read_text(encoding="utf-8") == "mine"
