"""The Transformer kind: its cache, positions, cross-attention memory and shown weights, and its config checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import seq2seq
from seq2seq import api
from seq2seq.config import Config, ModelConfig, apply_overrides
from seq2seq.errors import ConfigError
from seq2seq.evaluation.adaptation import Adaptation
from seq2seq.models.seq2seq import Seq2Seq
from seq2seq.models.transformer import TransformerDecoder
from seq2seq.tasks.lm import train_language_model
from seq2seq.tasks.registry import validate
from seq2seq.training.checkpoint import load_checkpoint, load_model_weights, save_checkpoint
from tests.conftest import toy_pairs
from tests.decoding.test_decoding import TOY_SETTINGS
from tests.models.test_language_model import PHRASE
from tests.models.test_model import padded_batch


def transformer(**settings: object) -> Seq2Seq:
    torch.manual_seed(0)
    values = {"arch": "transformer", "num_layers": 2, "hidden_size": 16, "heads": 4, "feedforward_size": 32,
              "dropout": 0.0, **settings}
    return Seq2Seq(ModelConfig(**values), 12, 14).eval()  # type: ignore[arg-type]


def stepped_logits(model: Seq2Seq, tgt_in: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Logits (B, T, V) of tgt_in fed step by step over padded_batch, and the shown weights of each step."""
    memory = model.encode(*padded_batch())
    state = model.init_state(memory)
    logits, weights = [], []
    for t in range(tgt_in.size(1)):
        step_logits, state = model.step(tgt_in[:, t], state, memory)
        logits.append(step_logits)
        weights.append(state.attention)
    return torch.stack(logits, dim=1), weights


@torch.no_grad()
def test_learned_positions_past_the_table_share_its_last_row_and_forward_still_equals_stepwise() -> None:
    model = transformer(positions="learned", max_positions=4)
    tgt_in = torch.randint(4, 14, (4, 7), generator=torch.Generator().manual_seed(2))
    stepped, _ = stepped_logits(model, tgt_in)
    torch.testing.assert_close(stepped, model.project(model(*padded_batch(), tgt_in)), rtol=1e-5, atol=1e-5)
    embedder = model.decoder.embedder
    torch.testing.assert_close(embedder.positions(torch.tensor([9])), embedder.positions(torch.tensor([3])))


@torch.no_grad()
def test_the_cache_grows_by_one_position_per_step_and_the_memory_holds_every_layers_cross_keys() -> None:
    model = transformer()
    src, lengths = padded_batch()
    memory = model.encode(src, lengths)
    decoder = model.decoder
    assert isinstance(decoder, TransformerDecoder)
    for layer, (keys, values) in zip(decoder.layers, decoder.cross(memory), strict=True):
        expected = layer.cross_attention.keys_values(memory.outputs)
        torch.testing.assert_close((keys, values), expected)
    state = model.init_state(memory)
    for step in range(3):
        _, state = model.step(torch.full((4,), 5), state, memory)
        assert state["self_keys"].shape == state["self_values"].shape == (4, 2, 4, step + 1, 4)
        assert state["position"].tolist() == [step + 1] * 4


@torch.no_grad()
def test_shown_weights_are_a_distribution_over_the_real_source_of_the_configured_layer() -> None:
    tgt_in = torch.randint(4, 14, (4, 3), generator=torch.Generator().manual_seed(3))
    _, last = stepped_logits(transformer(), tgt_in)
    _, lower = stepped_logits(transformer(attention_layer=1), tgt_in)
    lengths = padded_batch()[1]
    for weights in last + lower:
        torch.testing.assert_close(weights.sum(dim=1), torch.ones(4))
        for row, length in enumerate(lengths):
            assert (weights[row, length:] == 0).all()
    assert not torch.allclose(last[0], lower[0])


def test_tied_embeddings_are_one_matrix_that_learns_as_one_and_is_saved_and_loaded_tied(tmp_path: Path) -> None:
    model, untied = transformer(tie_embeddings=True).train(), transformer()
    embeddings = model.decoder.embedder.tokens.weight
    assert model.generator.weight is embeddings
    assert sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in model.parameters()) == 14 * 16
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    src, lengths = padded_batch()
    tgt_in = torch.randint(4, 14, (src.size(0), 5), generator=torch.Generator().manual_seed(3))
    before = embeddings.detach().clone()
    model.project(model(src, lengths, tgt_in)).logsumexp(-1).sum().backward()
    optimizer.step()
    assert model.generator.weight is embeddings and not torch.equal(embeddings, before)

    path = tmp_path / "tied.safetensors"
    save_checkpoint(path, {f"model.{name}": value for name, value in model.state_dict().items()}, {})
    loaded = transformer(tie_embeddings=True).eval()
    load_model_weights(loaded, load_checkpoint(path)[0], path)
    assert loaded.generator.weight is loaded.decoder.embedder.tokens.weight
    with torch.no_grad():
        torch.testing.assert_close(loaded(src, lengths, tgt_in), model.eval()(src, lengths, tgt_in))


def parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_shared_embeddings_read_both_sides_with_one_matrix_of_one_vocabulary(tmp_path: Path) -> None:
    """One matrix for source, target and output tokens; trained, the run has one vocabulary and copies sequences."""
    settings = {"arch": "transformer", "hidden_size": 16, "heads": 4, "feedforward_size": 32, "tie_embeddings": True}
    shared = Seq2Seq(ModelConfig(**settings, share_embeddings=True), 14, 14)  # type: ignore[arg-type]
    assert shared.encoder.embedder.tokens.weight is shared.decoder.embedder.tokens.weight is shared.generator.weight
    assert parameters(Seq2Seq(ModelConfig(**settings), 14, 14)) - parameters(shared) == 14 * 16  # type: ignore[arg-type]

    config = apply_overrides(Config(), [*TOY_SETTINGS, "train.epochs=6", "model.arch=transformer", "model.heads=4",
                                        "model.feedforward_size=64", "train.warmup_steps=20", "train.lr=0.002",
                                        "model.share_embeddings=true"])
    api.train(config, toy_pairs("copy", 1000, seed=1), toy_pairs("copy", 50, seed=2), tmp_path)
    loaded = api.load_translator(tmp_path)
    assert loaded.vocabs[0].to_dict() == loaded.vocabs[1].to_dict()
    assert loaded.model.encoder.embedder.tokens.weight is loaded.model.decoder.embedder.tokens.weight
    assert loaded.evaluate(toy_pairs("copy", 100, seed=3))["exact_match"] > 50


def test_shared_embeddings_need_a_kind_that_shares_and_one_token_kind() -> None:
    with pytest.raises(ConfigError, match=r"^model\.share_embeddings: model\.arch=attention cannot share"):
        validate(apply_overrides(Config(), ["model.share_embeddings=true"]))
    with pytest.raises(ConfigError, match=r"^model\.share_embeddings needs the same token kind on both sides"):
        validate(apply_overrides(Config(), ["model.arch=transformer", "model.share_embeddings=true",
                                            "data.src.kind=char", "data.tgt.kind=word"]))
    for task in ("lm", "classify", "speech"):
        with pytest.raises(ConfigError, match=r"model\.share_embeddings do not apply to task " + task):
            validate(apply_overrides(Config(), [f"task={task}", "model.arch=transformer",
                                                "model.share_embeddings=true"]))


def test_the_model_registry_checks_the_kind_and_its_settings_for_every_task() -> None:
    """Whole heads, a kind that can tie, a known kind: one-line errors from the registry, wherever a run starts."""
    config = apply_overrides(Config(), ["model.arch=transformer", "model.hidden_size=30", "model.heads=4"])
    with pytest.raises(ConfigError, match=r"^model\.hidden_size \(30\) must be a multiple of model\.heads \(4\)"):
        validate(config)
    with pytest.raises(ConfigError, match=r"^model\.tie_embeddings: model\.arch=attention cannot tie .* a transformer"):
        validate(apply_overrides(Config(), ["model.tie_embeddings=true"]))
    for task in ("seq2seq", "lm", "speech"):
        with pytest.raises(ConfigError, match=r"^model.arch: unknown architecture 'mamba' \(known: context, "):
            validate(apply_overrides(Config(), [f"task={task}", "model.arch=mamba"]))


def test_a_tied_transformer_language_model_learns_a_phrase_and_refuses_dynamic_evaluation(tmp_path: Path) -> None:
    config = apply_overrides(Config(), ["task=lm", "model.arch=transformer", "model.hidden_size=32",
                                        "model.feedforward_size=64", "model.dropout=0", "data.entries=line",
                                        "data.window=24", "data.batch_size=16", "train.precision=fp32",
                                        "train.lr=0.003", "train.warmup_steps=20", "train.epochs=12",
                                        "train.threads=1", "model.tie_embeddings=true"])
    generator = train_language_model(config, [PHRASE] * 100, out_dir=tmp_path)
    assert generator.generate("the c", temperature=0, stop_at_end=True) == [PHRASE]
    assert seq2seq.load(tmp_path).generate("the c", temperature=0, stop_at_end=True) == [PHRASE]  # saved tied
    assert generator.evaluate([PHRASE])["bpc"] < 0.5
    with pytest.raises(ConfigError, match=r"^model\.arch=transformer: this language model reads each window on its"):
        generator.evaluate([PHRASE], Adaptation())
