"""Tests for translation models started from a language model (model.init, --init): each side that reads the
language model's tokens takes its tokenizer, vocabulary, embeddings and RNN."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from seq2seq.config import Config, ModelConfig, apply_overrides
from seq2seq.data.pairs import Pair
from seq2seq.errors import ConfigError
from seq2seq.models.decoder import hidden_of
from seq2seq.models.language_model import LanguageModel
from seq2seq.models.seq2seq import Seq2Seq
from seq2seq.models.transfer import copy_into_decoder, copy_into_encoder, decoder_misfit, encoder_misfit
from seq2seq.tasks.lm import TextGenerator, train_language_model
from seq2seq.tasks.translation import load_translator, train_translator
from tests.cli.test_cli import one_line_error, run_cli

WORDS = ["kind=word", "split_punctuation=false"]
SHAPE = ["model.rnn=lstm", "model.num_layers=2", "model.embedding_size=16", "model.hidden_size=32"]
PHRASES = {symbol: f"{symbol}-1 {symbol}-2 {symbol}-3" for symbol in "abcdefghij"}


def phrase_pairs(count: int, seed: int) -> list[Pair]:
    """Sequences of 2-5 symbols and their translation: each symbol becomes a phrase of three words, of which a
    language model of the target side predicts the last two."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        symbols = [rng.choice(list(PHRASES)) for _ in range(rng.randint(2, 5))]
        pairs.append(Pair(" ".join(symbols), " ".join(PHRASES[symbol] for symbol in symbols)))
    return pairs


@pytest.fixture(scope="module")
def target_language_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[TextGenerator, Path]:
    """A word LSTM language model of the target side (unlabelled: the targets of many pairs), briefly trained."""
    out = tmp_path_factory.mktemp("lm") / "run"
    config = apply_overrides(Config(task="lm"), [*(f"data.tgt.{word}" for word in WORDS), *SHAPE,
                                                 "data.entries=line", "data.window=24", "train.max_steps=150",
                                                 "train.lr=0.005", "train.precision=fp32",
                                                 "train.sample_temperatures=[]"])
    generator = train_language_model(config, [pair.tgt for pair in phrase_pairs(2000, 7)], [], out)
    return generator, out


def translation_config(*overrides: str) -> Config:
    return apply_overrides(Config(), [*(f"data.{side}.{word}" for side in ("src", "tgt") for word in WORDS), *SHAPE,
                                      "model.arch=attention", "model.bidirectional=false", "train.precision=fp32",
                                      *overrides])


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
@torch.no_grad()
def test_the_decoder_computes_what_the_language_model_computed_while_its_feed_is_zero(rnn: str) -> None:
    torch.manual_seed(0)
    shape = ModelConfig(rnn=rnn, num_layers=2, embedding_size=6, hidden_size=8)
    lm = LanguageModel(shape, 20).eval()
    model = Seq2Seq(ModelConfig(rnn=rnn, num_layers=2, embedding_size=6, hidden_size=8, arch="attention",
                                input_feeding=True), 20, 20).eval()
    assert not decoder_misfit(model.config, shape)
    copy_into_decoder(model.decoder, lm)
    assert not model.decoder.cells[0].weight_ih[:, 6:].any()  # the fed vector's weights
    model.decoder.combine.weight.zero_()  # the attentional vector fed to the next step stays zero
    src = torch.randint(4, 20, (3, 4))
    memory = model.encode(src, torch.full((3,), 4))
    memory = replace(memory, final=tuple(torch.zeros_like(part) for part in memory.final))  # as the LM starts
    state, tokens = model.init_state(memory), torch.randint(4, 20, (3, 5))
    expected = lm.read(tokens)[0]  # (B, T, H) of the top layer
    for step in range(tokens.size(1)):
        _, state = model.decoder.step(tokens[:, step], state, memory)
        torch.testing.assert_close(hidden_of(state)[0][-1], expected[:, step])


@torch.no_grad()
def test_the_encoder_computes_what_the_language_model_computed() -> None:
    torch.manual_seed(0)
    shape = ModelConfig(rnn="gru", num_layers=2, embedding_size=6, hidden_size=8)
    lm = LanguageModel(shape, 20).eval()
    model = Seq2Seq(ModelConfig(rnn="gru", num_layers=2, embedding_size=6, hidden_size=8, bidirectional=False,
                                arch="attention"), 20, 20).eval()
    assert not encoder_misfit(model.config, shape)
    copy_into_encoder(model.encoder, lm)
    tokens = torch.randint(4, 20, (3, 7))
    torch.testing.assert_close(model.encoder(tokens, torch.full((3,), 7))[0], lm.read(tokens)[0])


def test_the_sides_that_read_the_language_models_tokens_start_from_it(
        target_language_model: tuple[TextGenerator, Path], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    generator, run = target_language_model
    config = translation_config(f"model.init={run}", "data.src.kind=char", "train.max_steps=2", "train.lr=1e-12")
    with caplog.at_level("INFO"):
        translator = train_translator(config, phrase_pairs(100, 1), phrase_pairs(20, 2), tmp_path / "run")
    assert "the decoder's embeddings and RNN layers come from the language model" in caplog.text
    assert translator.vocabs[1].to_dict() == generator.vocab.to_dict()
    assert translator.tokenizers[1].to_dict() == generator.tokenizer.to_dict()
    assert len(translator.vocabs[0]) < 20  # the source side (characters) built from the pairs
    decoder, lm = translator.model.decoder, generator.model
    for started, given in ((decoder.embedding.weight, lm.embedding.weight), (decoder.cells[1].weight_hh,
                           lm.rnn.weight_hh_l1), (decoder.cells[0].weight_ih[:, :16], lm.rnn.weight_ih_l0)):
        torch.testing.assert_close(started, given, atol=1e-9, rtol=0)  # a learning rate of 1e-12: as they started


@pytest.mark.slow
def test_a_translation_model_started_from_a_target_language_model_learns_faster(
        target_language_model: tuple[TextGenerator, Path], tmp_path: Path) -> None:
    _, run = target_language_model
    train, dev = phrase_pairs(300, 1), phrase_pairs(100, 2)
    losses = {}
    for name, init in (("fresh", []), ("started", [f"model.init={run}"])):
        config = translation_config(*init, "train.max_steps=60", "train.lr=0.005", "train.metric=loss",
                                    "train.eval_every=60", "data.src.kind=char", "data.tgt.min_freq=1")
        translator = train_translator(config, train, dev, tmp_path / name)
        losses[name] = translator.perplexity(dev)
    assert losses["started"] < 0.8 * losses["fresh"], losses


@pytest.mark.parametrize(("overrides", "message"), [
    (["data.tgt.kind=char"], "fits neither side: the encoder needs data.src.kind=word, not char; the decoder needs "
                             "data.tgt.kind=word, not char"),
    (["model.hidden_size=48"], "the decoder needs model.hidden_size=32, not 48"),
    (["model.arch=context"], "the decoder needs model.arch=attention (an RNN decoder with attention), not context"),
    (["model.copy=true", "data.src.kind=word"], "does not combine with model.copy"),
])
def test_an_init_that_fits_no_side_is_a_one_line_error(target_language_model: tuple[TextGenerator, Path],
                                                       tmp_path: Path, overrides: list[str], message: str) -> None:
    _, run = target_language_model
    data = tmp_path / "train.tsv"
    data.write_text("".join(f"{pair.src}\t{pair.tgt}\n" for pair in phrase_pairs(50, 1)), encoding="utf-8")
    code, _, err = run_cli("train", "--train", data, "--out", tmp_path / "run", "--init", run, "data.src.kind=char",
                           *(f"data.tgt.{word}" for word in WORDS), *SHAPE, "model.bidirectional=false",
                           "train.max_steps=1", *overrides)
    assert message in one_line_error(code, err)
    assert not (tmp_path / "run" / "best.safetensors").exists()


def test_a_prepared_corpus_and_a_language_models_task_refuse_init(
        target_language_model: tuple[TextGenerator, Path], tmp_path: Path) -> None:
    _, run = target_language_model
    data = tmp_path / "train.tsv"
    data.write_text("".join(f"{pair.src}\t{pair.tgt}\n" for pair in phrase_pairs(50, 1)), encoding="utf-8")
    code, _, err = run_cli("prepare", "--train", data, "--out", tmp_path / "corpus")
    assert code == 0, err
    code, _, err = run_cli("train", "--train", tmp_path / "corpus", "--out", tmp_path / "run", "--init", run)
    assert "train on the pairs, not on a prepared corpus" in one_line_error(code, err)
    code, _, err = run_cli("train", "--task", "lm", "--train", data, "--out", tmp_path / "lm", "--init", run)
    assert "model.init applies to tasks classify and seq2seq only, not lm" in one_line_error(code, err)


def test_a_side_of_another_language_starts_fresh(target_language_model: tuple[TextGenerator, Path], tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    generator, run = target_language_model
    config = translation_config(f"model.init={run}", "train.max_steps=2")  # word tokens on both sides, sizes fit
    with caplog.at_level("INFO"):
        translator = train_translator(config, phrase_pairs(100, 1), phrase_pairs(20, 2), tmp_path / "run")
    assert "the encoder starts fresh: it would need text the language model knows (0% of its tokens" in caplog.text
    assert translator.vocabs[0].to_dict() != generator.vocab.to_dict()
    assert translator.vocabs[1].to_dict() == generator.vocab.to_dict()


def test_a_transformer_language_model_is_a_one_line_error(tmp_path: Path) -> None:
    text = tmp_path / "text.txt"
    text.write_text("".join(f"{pair.tgt}\n" for pair in phrase_pairs(200, 1)), encoding="utf-8")
    code, _, err = run_cli("train", "--task", "lm", "--arch", "transformer", "--train", text, "--out",
                           tmp_path / "lm", "train.max_steps=1", "model.hidden_size=16", "model.embedding_size=16")
    assert code == 0, err
    data = tmp_path / "train.tsv"
    data.write_text("".join(f"{pair.src}\t{pair.tgt}\n" for pair in phrase_pairs(50, 1)), encoding="utf-8")
    code, _, err = run_cli("train", "--train", data, "--out", tmp_path / "run", "--init", tmp_path / "lm")
    assert "has no RNN to start another model" in one_line_error(code, err)


def test_a_run_resumed_from_the_api_with_the_config_it_started_with_continues_to_the_same_weights(
        target_language_model: tuple[TextGenerator, Path], tmp_path: Path) -> None:
    _, run = target_language_model
    train, dev = phrase_pairs(100, 1), phrase_pairs(20, 2)
    common = [f"model.init={run}", "data.src.kind=char", "data.tgt.max_size=1000",
              "train.eval_every=4"]  # data.tgt becomes the language model's (max_size 0: all its words)
    whole = translation_config(*common, "train.max_steps=8")
    train_translator(whole, train, dev, tmp_path / "whole")
    train_translator(translation_config(*common, "train.max_steps=4"), train, dev, tmp_path / "split")
    resumed = train_translator(whole, train, dev, tmp_path / "split", resume=True)
    assert resumed.config.data.tgt.max_size == 0
    one, two = (load_translator(tmp_path / name / "last.safetensors") for name in ("whole", "split"))
    for name, weight in one.model.state_dict().items():
        torch.testing.assert_close(weight, two.model.state_dict()[name])
    changed = replace(whole, data=replace(whole.data, src=replace(whole.data.src, lowercase=True)))
    with pytest.raises(ConfigError, match="the data settings differ"):  # the source split otherwise
        train_translator(changed, train, dev, tmp_path / "split", resume=True)
