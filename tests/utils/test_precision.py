"""What decoding with --precision fp32 guarantees on a trained model: beam search with beam size 1 equals greedy
search, and outputs do not depend on the batch they share (under bf16 autocast neither holds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seq2seq import api, cli
from seq2seq.cli import commands
from seq2seq.config import Config, apply_overrides
from seq2seq.decoding.options import DecodingOptions
from tests.conftest import toy_pairs

TINY = ["model.hidden_size=32", "model.embedding_size=16", "data.src.kind=word", "data.tgt.kind=word",
        "data.src.split_punctuation=false", "data.tgt.split_punctuation=false", "train.threads=1",
        "data.batch_size=16", "train.epochs=0", "train.max_steps=150", "train.eval_every=0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A briefly trained reversal model."""
    out = tmp_path_factory.mktemp("runs") / "reverse"
    api.train(apply_overrides(Config(), [*TINY, "train.precision=fp32"]), toy_pairs("reverse", 300, seed=1), [],
              out)
    return out


@pytest.fixture(scope="module")
def sources() -> list[str]:
    return [pair.src for pair in toy_pairs("reverse", 40, seed=7)]


def test_in_fp32_beam_size_1_equals_greedy(trained: Path, sources: list[str]) -> None:
    translator = api.load_translator(trained, device="cpu", precision="fp32")
    greedy = translator.translate_detailed(sources, DecodingOptions())
    beam = translator.translate_detailed(sources, DecodingOptions("beam", beam_size=1, length_penalty=0.0))
    assert [found[0].text for found in beam] == [found[0].text for found in greedy]
    assert [found[0].log_prob for found in beam] == pytest.approx([found[0].log_prob for found in greedy], abs=1e-4)


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_in_fp32_outputs_do_not_depend_on_the_batch_size(trained: Path, sources: list[str], strategy: str) -> None:
    translator = api.load_translator(trained, device="cpu", precision="fp32")
    options = DecodingOptions(strategy)
    outputs = {size: [found[0].text for found in translator.translate_detailed(sources, options, size)]
               for size in (1, 7, 64)}
    assert outputs[1] == outputs[7] == outputs[64]


def test_translate_precision_flag_gives_batch_independent_outputs(trained: Path, sources: list[str],
                                                                  tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("\n".join(sources) + "\n", encoding="utf-8")
    texts = []
    for size in ("1", "64"):
        output = tmp_path / f"out{size}.txt"
        assert cli.main(["translate", "--model", str(trained), "--input", str(source), "--output", str(output),
                         "--precision", "fp32", "--batch-size", size]) == 0
        texts.append(output.read_text(encoding="utf-8"))
    assert texts[0] == texts[1] and len(texts[0].splitlines()) == len(sources)


def test_serve_loads_its_models_with_the_precision_asked(trained: Path) -> None:
    serve = pytest.importorskip("seq2seq.serve")
    models, _ = serve.load_models([f"r={trained}"], "cpu", "fp32")
    assert models["r"].precision == "fp32"
    assert commands.build_parser().parse_args(["serve", "--model", "m", "--precision", "bf16"]).precision == "bf16"
