"""An exported language model beyond generate: its perplexity and bits per character equal PyTorch's, it streams the
text generate writes, on the command line too, without torch, and `seq2seq serve` serves it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

from seq2seq import cli
from seq2seq.errors import ConfigError, DataError
from seq2seq.onnx import OnnxGenerator
from seq2seq.tasks.lm import TextGenerator
from tests.onnx.test_onnx import LM_TEXT, trained_lm

HELD_OUT = ["the dog sat in the sun", "my fish ate a cat", "a cat ran on the mat today"] * 5 + ["zq unseen words"]
RANDOM_TEXT = ["tmhe a oyt sdcn", "fkoa hrs mtuy eidn"] * 5  # the same letters in no order the model has learned


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> tuple[TextGenerator, OnnxGenerator, Path]:
    """A tiny character language model (a couple of seconds of training), its export, and their folder."""
    folder = tmp_path_factory.mktemp("onnx-lm")
    return (*trained_lm(folder, []), folder)


@pytest.mark.parametrize("texts", [HELD_OUT, LM_TEXT[:4], ["a"]], ids=["held-out", "training", "one-letter"])
def test_scores_equal_pytorch(lm: tuple[TextGenerator, OnnxGenerator, Path], texts: list[str]) -> None:
    """The export's cross-entropy, perplexity and bits per character are PyTorch's (relative 1e-4) over the same
    tokens and characters: several rows, the last padded, and unknown characters (HELD_OUT); one row (the others)."""
    generator, onnx = lm[:2]
    want, found = generator.evaluate(texts), onnx.evaluate(texts)
    assert found.keys() == want.keys() and (found["tokens"], found["characters"]) == (want["tokens"],
                                                                                       want["characters"])
    for key in ("cross_entropy", "perplexity", "bpc"):
        assert found[key] == pytest.approx(want[key], rel=1e-4), key


@pytest.fixture(scope="module")
def transformer_lm(tmp_path_factory: pytest.TempPathFactory) -> tuple[TextGenerator, OnnxGenerator]:
    """A tiny Transformer language model, which reads held-out text in windows that overlap, and its export."""
    return trained_lm(tmp_path_factory.mktemp("onnx-transformer-lm"),
                      ["model.arch=transformer", "model.feedforward_size=64", "train.warmup_steps=10",
                       "train.lr=0.003"])


def test_a_transformer_scores_equal_pytorch_window_by_window(transformer_lm: tuple[TextGenerator, OnnxGenerator]
                                                             ) -> None:
    """Rows of about 120 characters, windows of 24 overlapping by 12: the export reads the same windows."""
    generator, onnx = transformer_lm
    assert onnx.manifest["layout"]["carries_state"] is False
    want, found = generator.evaluate(HELD_OUT * 3), onnx.evaluate(HELD_OUT * 3)
    assert found["tokens"] == want["tokens"]
    assert found["cross_entropy"] == pytest.approx(want["cross_entropy"], rel=1e-4)


def test_scores_tell_learned_text_from_noise(lm: tuple[TextGenerator, OnnxGenerator, Path]) -> None:
    """The scores measure the model: text like its training text is far likelier than its letters shuffled."""
    onnx = lm[1]
    assert onnx.evaluate(LM_TEXT[:4])["perplexity"] < 0.5 * onnx.evaluate(RANDOM_TEXT)["perplexity"]
    with pytest.raises(DataError, match="no text to evaluate"):
        onnx.evaluate([])


def test_evaluate_cli_on_the_export(lm: tuple[TextGenerator, OnnxGenerator, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """evaluate --model EXPORT --json prints the run directory's keys and values; an empty file, or decoding flags,
    are one-line errors."""
    data = tmp_path / "held-out.txt"
    data.write_text("\n".join(HELD_OUT) + "\n", encoding="utf-8")
    printed = []
    for model in (lm[2] / "run", lm[2] / "export"):
        assert cli.main(["evaluate", "--model", str(model), "--data", str(data), "--json"]) == 0
        printed.append(json.loads(capsys.readouterr().out))
    assert printed[1].keys() == printed[0].keys() == {"cross_entropy", "perplexity", "bpc", "tokens", "characters"}
    assert printed[1] == pytest.approx(printed[0], rel=1e-4)
    assert cli.main(["evaluate", "--model", str(lm[2] / "export"), "--data", str(data)]) == 0
    assert "perplexity = " in capsys.readouterr().out
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    for flags in (["--data", str(tmp_path / "empty.txt")], ["--data", str(data), "--max-length", "5"]):
        assert cli.main(["evaluate", "--model", str(lm[2] / "export"), *flags]) == 1
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and ("the file is empty" in error or "decoding flags" in error), error


@pytest.mark.parametrize("prompt", ["", "the c", "zq"])
def test_stream_pieces_join_into_the_generated_text(lm: tuple[TextGenerator, OnnxGenerator, Path],
                                                    prompt: str) -> None:
    """The export's pieces are PyTorch's, one per new character here, and joined they are generate()'s text after
    the prompt (greedy, whether or not </s> ends it; and a seeded sample)."""
    generator, onnx = lm[:2]
    for knobs in ({"temperature": 0, "stop_at_end": False}, {"temperature": 0, "stop_at_end": True},
                  {"temperature": 0.8, "seed": 4}):
        pieces = list(onnx.stream(prompt, max_length=40, **knobs))
        assert prompt + "".join(pieces) == onnx.generate(prompt, max_length=40, **knobs)[0]
        if knobs["temperature"] == 0:
            assert pieces == list(generator.stream(prompt, max_length=40, **knobs))
    assert len(list(onnx.stream(prompt, temperature=0, max_length=40))) == 40
    with pytest.raises(ConfigError, match="streaming writes one text"):
        onnx.stream(prompt, num=2)


def test_generate_stream_cli_on_the_export(lm: tuple[TextGenerator, OnnxGenerator, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """generate --model EXPORT --stream writes what generate writes without --stream, and PyTorch's run does; with
    --num 2 it is a one-line error."""
    outputs = []
    for model, stream in ((lm[2] / "run", []), (lm[2] / "export", []), (lm[2] / "export", ["--stream"])):
        assert cli.main(["generate", "--model", str(model), "--prompt", "the", "--temperature", "0",
                         "--max-length", "30", *stream]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] == outputs[2] and outputs[2].startswith("the") and len(outputs[2]) == 34
    assert cli.main(["generate", "--model", str(lm[2] / "export"), "--stream", "--num", "2"]) == 1
    error = capsys.readouterr()
    assert error.out == "" and error.err.count("\n") == 1 and "streaming writes one text" in error.err


@pytest.mark.slow
def test_evaluate_and_stream_import_no_torch(lm: tuple[TextGenerator, OnnxGenerator, Path]) -> None:
    """With torch unimportable, the export scores text and streams, and torch is never loaded."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "import seq2seq.onnx\n"
            f"model = seq2seq.onnx.load({str(lm[2] / 'export')!r})\n"
            f"print(repr(model.evaluate({HELD_OUT!r})['perplexity']))\n"
            "print(repr(''.join(model.stream('the', temperature=0, max_length=30))))\n"
            "del sys.modules['torch']\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    perplexity, text = result.stdout.splitlines()
    assert float(perplexity) == pytest.approx(lm[0].evaluate(HELD_OUT)["perplexity"], rel=1e-4)
    assert "the" + ast.literal_eval(text) == lm[0].generate("the", temperature=0, max_length=30)[0]


@pytest.mark.slow
def test_serve_answers_generate_from_the_export(lm: tuple[TextGenerator, OnnxGenerator, Path]) -> None:
    """serve --model EXPORT: /v1/generate (plain and streamed) writes PyTorch's greedy text on ONNX Runtime, and
    /v1/translate refuses the model."""
    for module in ("fastapi", "httpx", "uvicorn"):
        pytest.importorskip(module)
    import httpx

    from seq2seq.serve import create_app, load_models
    from tests.serving import serving

    models, paths = load_models([f"lm={lm[2] / 'export'}"])
    body = {"prompt": "the", "temperature": 0, "max_length": 30}
    with serving(create_app(models, paths=paths)) as url, httpx.Client(base_url=url, timeout=60) as client:
        described = client.get("/v1/models").json()["models"][0]
        texts = client.post("/v1/generate", json=body).json()["texts"]
        with client.stream("POST", "/v1/generate", json={**body, "stream": True}) as response:
            events = [line for line in response.iter_lines() if line.startswith('data: {"text"')]
        refused = client.post("/v1/translate", json={"texts": ["a"]})
    assert (described["task"], described["runtime"]) == ("generate", "onnxruntime")
    assert texts == lm[0].generate("the", temperature=0, max_length=30)
    assert "the" + "".join(json.loads(line[6:])["text"] for line in events) == texts[0] and len(events) == 30
    assert refused.status_code == 400 and "does not serve /v1/translate" in refused.json()["error"]
