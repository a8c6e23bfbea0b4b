"""Tests for classifiers started from a language model (model.init, --init), layer-wise learning rates, gradual
unfreezing and concat pooling."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from seq2seq.config import Config, ModelConfig, TokenizerConfig, apply_overrides
from seq2seq.data.examples import Example
from seq2seq.data.pairs import collate
from seq2seq.errors import CheckpointError, ConfigError
from seq2seq.models.classifier import Classifier, read_padded
from seq2seq.models.language_model import LanguageModel
from seq2seq.models.objectives import classification_losses
from seq2seq.models.transfer import check_embeddings, copy_into_encoder, layer_parameters
from seq2seq.tasks.classify import load_classifier, train_classifier
from seq2seq.tasks.lm import TextGenerator, train_language_model
from seq2seq.training import schedules
from seq2seq.training.layerwise import Layers
from seq2seq.training.trainer import Trainer
from tests.cli.test_cli import one_line_error, run_cli
from tests.tasks.test_classification import majority_pairs

WORDS = ["data.src.kind=word", "data.src.split_punctuation=false", "train.precision=fp32"]
LM_WORDS = ["data.tgt.kind=word", "data.tgt.split_punctuation=false", "train.precision=fp32"]  # a model's output side
LM_SHAPE = ["model.rnn=gru", "model.num_layers=2", "model.embedding_size=16", "model.hidden_size=24"]
CLASSIFIER_SHAPE = ["model.rnn=gru", "model.num_layers=2", "model.embedding_size=16", "model.hidden_size=48"]


@pytest.fixture(scope="module")
def language_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[TextGenerator, Path]:
    """A two-layer GRU language model trained for a few steps on the majority task's texts."""
    out = tmp_path_factory.mktemp("lm") / "run"
    config = apply_overrides(Config(task="lm"), [*LM_WORDS, *LM_SHAPE, "data.entries=line", "data.window=20",
                                                 "train.max_steps=40", "train.sample_temperatures=[]"])
    generator = train_language_model(config, [pair.src for pair in majority_pairs(600, 4)], [], out)
    return generator, out


def classifier_config(init: Path, *overrides: str) -> Config:
    return apply_overrides(Config(task="classify"), [*WORDS, *CLASSIFIER_SHAPE, f"model.init={init}", *overrides])


def test_init_gives_the_language_models_tokenizer_vocabulary_and_weights(
        language_model: tuple[TextGenerator, Path], tmp_path: Path) -> None:
    generator, run = language_model
    config = classifier_config(run, "train.max_steps=3", "train.unfreeze_every=100")  # the encoder stays frozen
    classifier = train_classifier(replace(config, data=replace(config.data, src=TokenizerConfig())),  # chars
                                  majority_pairs(200, 1), majority_pairs(50, 2), tmp_path)
    assert classifier.vocabs[0].to_dict() == generator.vocab.to_dict()
    assert classifier.tokenizer.to_dict() == generator.tokenizer.to_dict()
    assert classifier.config.data.src == generator.config.data.tgt and len(generator.vocab) < 20  # words
    encoder, lm = classifier.model.encoder, generator.model
    assert encoder.embedding is not None and torch.equal(encoder.embedding.weight, lm.embedding.weight)
    for name, weight in lm.rnn.named_parameters():
        assert torch.equal(getattr(encoder.rnn, name)[..., :weight.size(-1)], weight), name


@pytest.mark.parametrize("bidirectional", [True, False])
@torch.no_grad()
def test_the_forward_direction_computes_what_the_language_model_computed(bidirectional: bool) -> None:
    torch.manual_seed(0)
    lm = LanguageModel(ModelConfig(rnn="lstm", num_layers=3, embedding_size=6, hidden_size=8), 20).eval()
    classifier = Classifier(ModelConfig(rnn="lstm", num_layers=3, embedding_size=6, hidden_size=16 if bidirectional
                                        else 8, bidirectional=bidirectional, init="lm"), 20, 4).eval()
    copy_into_encoder(classifier.encoder, lm)
    src = torch.randint(4, 20, (3, 7))
    outputs = read_padded(classifier.encoder.rnn, classifier.encoder.embed(src), torch.full((3,), 7))  # (B, S, H)
    torch.testing.assert_close(outputs[..., :8], lm.read(src)[0])


def test_a_classifier_started_from_a_language_model_learns(language_model: tuple[TextGenerator, Path],
                                                             tmp_path: Path) -> None:
    _, run = language_model
    config = classifier_config(run, "model.pooling=concat", "train.epochs=8", "train.metric=accuracy",
                               "train.layer_lr_decay=2.6", "train.unfreeze_every=20", "train.lr=0.003")
    classifier = train_classifier(config, majority_pairs(1000, 1), majority_pairs(200, 2), tmp_path)
    assert classifier.evaluate(majority_pairs(300, 3))["accuracy"] >= 90.0


def test_concat_pooling_puts_last_mean_and_max_side_by_side() -> None:
    torch.manual_seed(0)
    pooled = {}
    for kind in ("last", "mean", "max", "concat"):
        torch.manual_seed(0)
        model = Classifier(ModelConfig(hidden_size=8, embedding_size=4, pooling=kind), 12, 3).eval()
        batch = collate([Example([4, 5, 6], [0, 0]), Example([7], [0, 0])])
        pooled[kind] = model.pool(batch.src, batch.src_lengths).features
    assert pooled["concat"].shape == (2, 24) and model.output.in_features == 24
    torch.testing.assert_close(pooled["concat"], torch.cat([pooled["last"], pooled["mean"], pooled["max"]], dim=-1))


def test_layers_are_bottom_first_with_the_fresh_backward_direction_in_the_head() -> None:
    model = Classifier(ModelConfig(num_layers=2, hidden_size=8, embedding_size=4, init="lm"), 12, 3)
    embeddings, first, second, head = layer_parameters(model)
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    assert [names[id(p)] for p in embeddings] == ["encoder.embedding.weight"]
    assert all(names[id(p)].endswith("_l0") for p in first) and len(first) == 4
    assert all(names[id(p)].endswith("_l1") for p in second) and len(second) == 4
    assert sum(names[id(p)].endswith("_reverse") for p in head) == 8
    assert sum(len(layer) for layer in (embeddings, first, second, head)) == len(list(model.parameters()))
    plain = layer_parameters(Classifier(ModelConfig(num_layers=2, hidden_size=8, embedding_size=4), 12, 3))
    assert [len(layer) for layer in plain] == [1, 8, 8, 5]  # attention pooling's 3 tensors and the output's 2


def test_each_lower_layer_learns_at_the_rate_above_divided_by_the_decay(tmp_path: Path) -> None:
    config = apply_overrides(Config(task="classify"), ["model.num_layers=2", "train.lr=0.01", "train.layer_lr_decay=2",
                                                       "train.lr_schedule=linear", "train.max_steps=10"])
    model = Classifier(config.model, 12, 3)
    trainer = Trainer(model, classification_losses(config.train, None), config, [], [], tmp_path, {},
                      layers=layer_parameters(model))
    rates = [group["lr"] for group in trainer.optimizer.param_groups]
    assert rates == pytest.approx([0.00125, 0.0025, 0.005, 0.01])  # embeddings, two RNN layers, head
    trainer.schedule.before_step(schedules.Progress(step=5, elapsed=0.0, max_steps=10))  # the schedule keeps the ratios
    assert [group["lr"] for group in trainer.optimizer.param_groups] == pytest.approx([r / 2 for r in rates])


def test_gradual_unfreezing_trains_the_head_first_then_one_more_layer_every_so_many_steps() -> None:
    torch.manual_seed(0)
    model = Classifier(ModelConfig(num_layers=2, hidden_size=8, embedding_size=4, pooling="max"), 12, 3)
    parts = layer_parameters(model)
    layers = Layers(parts, 2.6, unfreeze_every=5)
    batch = collate([Example([4, 5, 6], [0, 0]), Example([7, 8], [0, 0])])
    for step, training in [(0, 1), (4, 1), (5, 2), (10, 3), (15, 4), (99, 4)]:
        layers.unfreeze(step)
        model.zero_grad(set_to_none=True)
        model(batch.src, batch.src_lengths).sum().backward()
        for index, layer in enumerate(parts):
            trains = index >= len(parts) - training
            assert all(p.requires_grad == trains for p in layer), (step, index)
            assert all((p.grad is not None) == trains for p in layer), (step, index)


@pytest.mark.parametrize(("overrides", "hidden_size"), [([], 48), (["model.rnn=lstm", "model.num_layers=1"], 48),
                                                        (["model.bidirectional=false"], 24)],
                         ids=["unset", "set-to-the-defaults", "one-direction"])
def test_encoder_settings_at_the_defaults_take_the_language_models_shape(
        language_model: tuple[TextGenerator, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture,
        overrides: list[str], hidden_size: int) -> None:
    generator, run = language_model
    config = apply_overrides(Config(task="classify"), [*WORDS, f"model.init={run}", "train.max_steps=2",
                                                       "train.unfreeze_every=100", *overrides])  # encoder kept
    assert (config.model.rnn, config.model.num_layers, config.model.hidden_size) == ("lstm", 1, 256)  # the defaults
    with caplog.at_level("INFO"):
        classifier = train_classifier(config, majority_pairs(100, 1), [], tmp_path)
    model = classifier.config.model
    assert (model.rnn, model.num_layers, model.embedding_size, model.hidden_size) == ("gru", 2, 16, hidden_size)
    assert ("the encoder takes the language model's shape: model.rnn=gru, model.num_layers=2, "
            f"model.embedding_size=16, model.hidden_size={hidden_size}") in caplog.text
    encoder = classifier.model.encoder
    assert encoder.embedding is not None and torch.equal(encoder.embedding.weight, generator.model.embedding.weight)


@pytest.mark.parametrize(("overrides", "message"), [
    (["model.hidden_size=24"], "the language model needs the classifier's model.hidden_size=48 (its hidden size per "
                               "direction"),
    (["model.embedding_size=32"], "needs the classifier's model.embedding_size=16, not 32"),
    (["model.num_layers=3"], "model.num_layers=2, not 3"),
])
def test_a_language_model_that_does_not_fit_is_a_one_line_error_naming_it(
        language_model: tuple[TextGenerator, Path], tmp_path: Path, overrides: list[str], message: str) -> None:
    _, run = language_model
    data = tmp_path / "train.tsv"
    data.write_text("".join(f"{pair.src}\t{pair.tgt}\n" for pair in majority_pairs(50, 1)), encoding="utf-8")
    code, _, err = run_cli("train", "--task", "classify", "--train", data, "--out", tmp_path / "run", "--init", run,
                           *WORDS, *CLASSIFIER_SHAPE, *overrides)
    line = one_line_error(code, err)
    assert f"model.init: {run}: " in line and message in line


def test_an_init_that_is_not_a_language_model_is_a_one_line_error(tmp_path: Path) -> None:
    data = tmp_path / "train.tsv"
    data.write_text("".join(f"{pair.src}\t{pair.tgt}\n" for pair in majority_pairs(100, 1)), encoding="utf-8")
    train = ["train", "--task", "classify", "--train", data, *WORDS, "model.hidden_size=8", "model.embedding_size=4"]
    code, _, err = run_cli(*train, "--out", tmp_path / "run", "--init", tmp_path / "missing")
    assert "no such model directory or checkpoint file" in one_line_error(code, err)
    code, _, err = run_cli(*train, "--out", tmp_path / "classifier", "train.max_steps=2")
    assert code == 0, err
    code, _, err = run_cli(*train, "--out", tmp_path / "run", "--init", tmp_path / "classifier")
    assert "a classifier, not a language model" in one_line_error(code, err)
    code, _, err = run_cli("train", "--task", "lm", "--train", data, "--out", tmp_path / "lm", "--init", tmp_path)
    assert "model.init applies to tasks classify and seq2seq only" in one_line_error(code, err)


def test_a_one_hot_language_model_has_no_embeddings_to_give() -> None:
    with pytest.raises(CheckpointError, match=r"lm\.safetensors: a one-hot language model"):
        check_embeddings(ModelConfig(one_hot=True), "lm.safetensors")


def test_a_run_resumed_from_the_api_with_the_config_it_started_with_continues_to_the_same_weights(
        language_model: tuple[TextGenerator, Path], tmp_path: Path) -> None:
    _, run = language_model
    train, dev = majority_pairs(200, 1), majority_pairs(50, 2)
    common = [f"model.init={run}", "train.eval_every=4", "train.unfreeze_every=3", "train.precision=fp32"]
    whole = apply_overrides(Config(task="classify"), [*common, "train.max_steps=8"])  # data.src, shape: the LM's
    train_classifier(whole, train, dev, tmp_path / "whole")
    train_classifier(apply_overrides(Config(task="classify"), [*common, "train.max_steps=4"]), train, dev,
                     tmp_path / "split")
    resumed = train_classifier(whole, train, dev, tmp_path / "split", resume=True)
    assert resumed.config.model.hidden_size == 48 and resumed.config.data.src.kind == "word"
    one, two = (load_classifier(tmp_path / name / "last.safetensors") for name in ("whole", "split"))
    for name, weight in one.model.state_dict().items():
        torch.testing.assert_close(weight, two.model.state_dict()[name])
    with pytest.raises(ConfigError, match="the model settings differ"):  # a size set, not taken from the LM
        train_classifier(replace(whole, model=replace(whole.model, hidden_size=96)), train, dev, tmp_path / "split",
                         resume=True)
