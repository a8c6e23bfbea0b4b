"""A language model's output layer: the adaptive softmax is a distribution whose loss is its negative log-likelihood,
it learns as the full softmax does, and its settings are checked in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import seq2seq
from seq2seq.config import Config, ModelConfig, apply_overrides
from seq2seq.errors import ConfigError
from seq2seq.models import architectures
from seq2seq.models.language_model import LanguageModel
from seq2seq.models.outputs import AdaptiveSoftmax, FullSoftmax, output_layer
from seq2seq.tasks import registry
from seq2seq.tasks.lm import train_language_model
from tests.models.test_language_model import PHRASE, TINY


def test_adaptive_scores_are_log_probabilities_and_the_loss_is_their_nll() -> None:
    """Every row's probabilities sum to 1 over the whole vocabulary, tail clusters included; the training loss is the
    summed negative log-probability of the targets, and its gradient reaches head, tails and features."""
    torch.manual_seed(0)
    layer = output_layer(16, 30, [5, 12])
    features = torch.randn(2, 6, 16, requires_grad=True)
    scores = layer(features)  # (2, 6, 30): leading axes kept
    torch.testing.assert_close(scores.exp().sum(-1), torch.ones(2, 6))
    targets = torch.tensor([0, 4, 5, 11, 12, 29] * 2)  # head, first and last of each cluster
    loss = layer.loss(features.reshape(-1, 16), targets)
    torch.testing.assert_close(loss, -scores.reshape(-1, 30).gather(1, targets[:, None]).sum())
    loss.backward()
    assert features.grad is not None and all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.parameters())


def test_without_cutoffs_the_output_layer_is_the_full_softmax() -> None:
    """No cutoffs: one projection whose parameters keep the names of earlier checkpoints (generator.weight, .bias)."""
    model = LanguageModel(ModelConfig(hidden_size=8, embedding_size=4, dropout=0.0), 20)
    assert isinstance(model.generator, FullSoftmax) and {"generator.weight", "generator.bias"} <= set(
        model.state_dict())
    adaptive = LanguageModel(ModelConfig(hidden_size=8, embedding_size=4, dropout=0.0, adaptive_softmax=[6]), 20)
    assert isinstance(adaptive.generator, AdaptiveSoftmax) and "generator.weight" not in adaptive.state_dict()


@pytest.mark.parametrize(("cutoffs", "message"), [([0, 5], "rise strictly from 1"), ([5, 5], "rise strictly"),
                                                 ([8, 4], "rise strictly"), ([5, 20], "below the vocabulary's 20"),
                                                 ([30], "below the vocabulary's 20")])
def test_bad_cutoffs_are_one_line_errors(cutoffs: list[int], message: str) -> None:
    with pytest.raises(ConfigError, match=rf"^model.adaptive_softmax=\[.*\]: .*{message}"):
        output_layer(16, 20, cutoffs)


def test_a_last_cluster_without_a_projection_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"3 tail clusters need model.hidden_size of at least 64"):
        output_layer(48, 20, [2, 4, 8])


def test_the_adaptive_softmax_computes_in_fp32_under_bf16_autocast() -> None:
    """On CPU autocast leaves log-softmax in bf16, which torch's layer would copy into fp32 buffers: scores and loss
    come out in fp32, and equal to those without autocast."""
    torch.manual_seed(0)
    layer, features = output_layer(16, 30, [5, 12]), torch.randn(12, 16)
    targets = torch.tensor([0, 4, 5, 11, 12, 29] * 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores, loss = layer(features), layer.loss(features, targets)
    assert scores.dtype == loss.dtype == torch.float32
    torch.testing.assert_close(scores, layer(features))
    torch.testing.assert_close(loss, layer.loss(features, targets))


@pytest.mark.parametrize(("overrides", "message"), [
    (["model.adaptive_softmax=[6]", "train.label_smoothing=0.1"], "full distribution to smooth"),
    (["model.adaptive_softmax=[6,3]"], "rise strictly from 1"),
    (["model.adaptive_softmax=[2,4,8]", "model.hidden_size=48"], "need model.hidden_size of at least 64"),
    (["model.adaptive_softmax=[6]", "model.arch=transformer", "model.tie_embeddings=true"], "no full output matrix"),
    (["task=classify", "model.adaptive_softmax=[6]"], "model.adaptive_softmax applies to task lm only")])
def test_settings_the_adaptive_softmax_excludes_are_refused(overrides: list[str], message: str) -> None:
    config = apply_overrides(Config(), ["task=lm", *overrides])
    with pytest.raises(ConfigError, match=message):
        registry.validate(config)


@pytest.mark.parametrize("arch", ["attention", "transformer"])
def test_a_language_model_learns_with_the_adaptive_softmax(tmp_path: Path, arch: str) -> None:
    """A char model whose phrase tokens fall in the head and both tail clusters learns it: greedy writes the phrase
    and its perplexity on it is near 1."""
    overrides = [*TINY, "train.epochs=12", "model.adaptive_softmax=[7,10]", f"model.arch={arch}"]
    if arch == "transformer":
        overrides += ["model.heads=4", "model.feedforward_size=64", "train.lr=0.003", "train.epochs=30"]
    generator = train_language_model(apply_overrides(Config(), overrides), [PHRASE] * 100,
                                     out_dir=tmp_path / "run")
    assert len(generator.vocab) > 10  # some of the phrase's characters are in the last cluster
    assert isinstance(seq2seq.load(tmp_path / "run").model.generator, AdaptiveSoftmax)  # saved and loaded as such
    assert generator.generate("the c", temperature=0, stop_at_end=True) == [PHRASE]
    assert generator.evaluate([PHRASE])["perplexity"] < 1.5


def test_models_built_directly_refuse_what_the_adaptive_softmax_excludes() -> None:
    """Without the task's config check: a tied Transformer and a smoothed loss are one-line errors, not a silently
    unused matrix or an ignored setting."""
    config = ModelConfig(arch="transformer", hidden_size=16, heads=4, feedforward_size=32, tie_embeddings=True,
                         adaptive_softmax=[6])
    with pytest.raises(ConfigError, match=r"model\.tie_embeddings needs the full softmax"):
        architectures.language_model(config, 20)
    with pytest.raises(ConfigError, match=r"train\.label_smoothing=0"):
        output_layer(16, 20, [6]).loss(torch.randn(3, 16), torch.tensor([1, 7, 19]), label_smoothing=0.1)
