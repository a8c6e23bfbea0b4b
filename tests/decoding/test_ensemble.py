"""Ensembles decode with the mean of their members' next-token probabilities, through every strategy."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from seq2seq import api
from seq2seq.config import Config, apply_overrides
from seq2seq.data.examples import Example
from seq2seq.data.pairs import Pair, collate
from seq2seq.decoding.ensemble import Ensemble
from seq2seq.decoding.options import DecodingOptions
from seq2seq.decoding.search import decode
from seq2seq.errors import CheckpointError
from tests.conftest import toy_pairs
from tests.decoding.test_decoding import TOY_SETTINGS, run_cli


def train_toy(folder: Path, *overrides: str) -> Path:
    config = apply_overrides(Config(), [*TOY_SETTINGS, "train.epochs=2", *overrides])
    api.train(config, toy_pairs("reverse", 1000, seed=1), toy_pairs("reverse", 50, seed=2), folder)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two small models trained on the same data with different seeds (so with the same vocabularies)."""
    folder = tmp_path_factory.mktemp("ensemble")
    return train_toy(folder / "a", "train.seed=1"), train_toy(folder / "b", "train.seed=2")


@pytest.fixture(scope="module")
def sources(runs: tuple[Path, Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """24 held-out toy sources as a padded batch (B, S) and lengths (B,)."""
    vocab = api.load_translator(runs[0]).vocabs[0]
    batch = collate([Example(vocab.encode(p.src.split()), [0]) for p in toy_pairs("reverse", 24, seed=3)])
    return batch.src, batch.src_lengths


def test_step_is_the_log_of_the_members_mean_probability(runs: tuple[Path, Path],
                                                         sources: tuple[torch.Tensor, torch.Tensor]) -> None:
    assert_first_step_is_the_mean([api.load_translator(run).model for run in runs], sources)


def assert_first_step_is_the_mean(members: list[torch.nn.Module], sources: tuple[torch.Tensor, torch.Tensor]) -> None:
    """The ensemble's first step gives the log of its members' mean next-token probability."""
    ensemble = Ensemble(members)  # type: ignore[arg-type]
    memory = ensemble.encode(*sources)
    tokens = torch.full((sources[0].size(0),), 2)  # <s>
    log_probs, _ = ensemble.step(tokens, ensemble.init_state(memory), memory)
    expected = torch.stack([torch.softmax(m.step(tokens, m.init_state(part), part)[0], dim=-1)
                            for m, part in zip(members, memory.parts, strict=True)]).mean(dim=0).log()
    torch.testing.assert_close(log_probs, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("options", [DecodingOptions(), DecodingOptions("beam", beam_size=3, n_best=2)],
                         ids=["greedy", "beam"])
def test_a_model_with_itself_decodes_like_the_model(runs: tuple[Path, Path],
                                                    sources: tuple[torch.Tensor, torch.Tensor],
                                                    options: DecodingOptions) -> None:
    model = api.load_translator(runs[0]).model
    alone, doubled = decode(model, *sources, options), decode(Ensemble([model, model]), *sources, options)  # type: ignore[list-item]
    for one, two in zip(alone, doubled, strict=True):
        assert [h.tokens for h in one] == [h.tokens for h in two]
        assert [h.log_prob for h in one] == pytest.approx([h.log_prob for h in two], abs=1e-4)


def test_perplexity_and_scores_agree_and_beat_the_members_average(runs: tuple[Path, Path]) -> None:
    pairs = toy_pairs("reverse", 60, seed=5)
    ensemble = api.load([str(run) for run in runs])
    assert isinstance(ensemble, api.Translator) and isinstance(ensemble.model, Ensemble)
    members = [api.load_translator(run) for run in runs]
    # -log of a mean probability is at most the mean of the -logs (Jensen), token by token
    log_perplexities = [torch.tensor(m.perplexity(pairs)).log() for m in members]
    assert float(torch.tensor(ensemble.perplexity(pairs)).log()) <= float(sum(log_perplexities)) / 2 + 1e-6
    # the score of each greedy output is its log-probability under the ensemble with teacher forcing
    for pair, (translation,) in zip(pairs, ensemble.translate_detailed([p.src for p in pairs[:10]]), strict=False):
        assert translation.tokens[-1] == "</s>"
        output = Pair(pair.src, " ".join(translation.tokens[:-1]))
        assert ensemble.perplexity([output]) == pytest.approx(
            math.exp(-translation.log_prob / len(translation.tokens)), rel=1e-4)


def test_members_must_share_vocabularies(runs: tuple[Path, Path], tmp_path: Path) -> None:
    chars = train_toy(tmp_path / "chars", "data.src.kind=char", "train.epochs=1")
    with pytest.raises(CheckpointError, match=f"^{chars}: its tokenizers, vocabularies or copy setting differ"):
        api.load_ensemble([runs[0], chars])


def test_cli_translates_and_evaluates_with_an_ensemble(runs: tuple[Path, Path], tmp_path: Path) -> None:
    data = tmp_path / "test.tsv"
    data.write_text("".join(f"{p.src}\t{p.tgt}\n" for p in toy_pairs("reverse", 20, 4)), encoding="utf-8")
    code, out, err = run_cli("evaluate", "--model", *runs, "--data", data, "--strategy", "beam", "--json")
    assert code == 0, err
    assert 0.0 <= json.loads(out)["exact_match"] <= 100.0
    source = tmp_path / "in.txt"
    source.write_text("a b c\nd e f g\n", encoding="utf-8")
    code, out, err = run_cli("translate", "--model", *runs, "--input", source)
    assert code == 0, err
    assert out.splitlines() == api.load(list(runs)).translate(["a b c", "d e f g"])  # type: ignore[union-attr]


def test_a_transformer_and_an_rnn_ensemble_and_decode_with_their_mean(runs: tuple[Path, Path], tmp_path: Path,
                                                                       sources: tuple[torch.Tensor, torch.Tensor]
                                                                       ) -> None:
    """Members of different kinds: each reorders its own state (a cache beside RNN parts) in beam search."""
    transformer = train_toy(tmp_path / "transformer", "model.arch=transformer", "model.heads=4",
                            "model.feedforward_size=64", "train.warmup_steps=20")
    members = [api.load_translator(run).model for run in (runs[0], transformer)]
    assert_first_step_is_the_mean(members, sources)
    ensemble = Ensemble(members)  # type: ignore[arg-type]
    beams = decode(ensemble, *sources, DecodingOptions("beam", beam_size=3, n_best=2))
    for row, found in enumerate(beams):
        alone = decode(ensemble, sources[0][row:row + 1], sources[1][row:row + 1],
                       DecodingOptions("beam", beam_size=3, n_best=2))[0]
        assert [h.tokens for h in found] == [h.tokens for h in alone]
