"""Copy attention (pointer-generator), coverage, source truncation and the summarize command."""

from __future__ import annotations

import json
import random
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from seq2seq import api, cli
from seq2seq.config import Config, ModelConfig, apply_overrides
from seq2seq.data.examples import encode_pairs
from seq2seq.data.pairs import Batch, Pair
from seq2seq.data.tokenizers import build_tokenizer
from seq2seq.data.vocab import UNK_ID, Vocab
from seq2seq.errors import ConfigError
from seq2seq.models.loss import coverage_loss
from seq2seq.models.objectives import sequence_loss
from seq2seq.models.seq2seq import Seq2Seq
from seq2seq.tasks import registry

VOCAB = 12  # ids 4..11 are known words; ids from 12 on are a sentence's unknown (extended) words


def copy_model(coverage: bool = False, copy: bool = True) -> Seq2Seq:
    torch.manual_seed(0)
    config = ModelConfig(arch="attention", attention="bahdanau", hidden_size=16, embedding_size=8, dropout=0.0,
                         copy=copy, coverage=coverage)
    return Seq2Seq(config, VOCAB, VOCAB).eval()


def extended_batch() -> Batch:
    """Sources with unknown words (ids >= VOCAB) that the targets copy."""
    src = torch.tensor([[4, 12, 5, 13], [14, 6, 0, 0]])
    tgt = torch.tensor([[2, 12, 13, 7, 3], [2, 14, 14, 3, 0]])
    return Batch(src, torch.tensor([4, 2]), tgt[:, :-1], tgt[:, 1:])


def test_extended_vocabulary_round_trip() -> None:
    vocab = Vocab(["the", "cat"])
    ids, extension = vocab.encode_extended(["the", "zorp", "cat", "blix", "zorp"])
    assert extension == ["zorp", "blix"]
    assert ids == [4, 6, 5, 7, 6]
    target = vocab.encode_target(["blix", "the", "unseen"], extension)
    assert target == [2, 7, 4, UNK_ID, 3]
    assert vocab.decode(target, extension) == ["blix", "the", "<unk>"]


def test_copy_step_is_a_distribution_over_the_extension() -> None:
    model = copy_model()
    batch = extended_batch()
    with torch.no_grad():
        memory = model.encode(batch.src, batch.src_lengths)
        log_probs, _ = model.step(batch.tgt_in[:, 0], model.init_state(memory), memory)
    assert memory.width == 15 and log_probs.shape == (2, 15)
    torch.testing.assert_close(log_probs.exp().sum(dim=1), torch.ones(2))
    assert log_probs[1, 12].exp() < 1e-9  # row 1 has no word 12 in its source: nothing to copy it from
    assert log_probs[1, 14].exp() > 1e-3  # but it can copy its word 14


@pytest.mark.parametrize("coverage", [False, True])
def test_training_loss_equals_stepwise_log_probs(coverage: bool) -> None:
    """The loss trained on is the negative log-probability that decoding assigns, copied words included."""
    model = copy_model(coverage)
    batch = extended_batch()
    with torch.no_grad():
        loss, tokens = sequence_loss(model, batch)
        memory = model.encode(batch.src, batch.src_lengths)
        state, total = model.init_state(memory), torch.tensor(0.0)
        for t in range(batch.tgt_in.size(1)):
            log_probs, state = model.step(batch.tgt_in[:, t], state, memory)
            picked = log_probs.gather(1, batch.tgt_out[:, t:t + 1]).squeeze(1)
            total -= picked.masked_fill(batch.tgt_out[:, t] == 0, 0.0).sum()
    assert tokens == 7
    torch.testing.assert_close(loss, total, rtol=1e-5, atol=1e-4)


def test_coverage_sums_past_attention() -> None:
    model = copy_model(coverage=True, copy=False)
    batch = extended_batch()
    src = batch.src.clamp(max=VOCAB - 1)
    with torch.no_grad():
        memory = model.encode(src, batch.src_lengths)
        state, seen = model.init_state(memory), torch.zeros(2, 4)
        for t in range(3):
            torch.testing.assert_close(state["coverage"], seen)
            _, state = model.step(batch.tgt_in[:, t].clamp(max=VOCAB - 1), state, memory)
            seen = seen + state.attention


def test_coverage_loss_counts_attention_paid_twice() -> None:
    mask = torch.ones(1, 2, dtype=torch.bool)
    moving_on = torch.tensor([[[0.9, 0.1], [0.1, 0.9]]])
    staying = torch.tensor([[[0.9, 0.1], [0.8, 0.2]]])
    assert coverage_loss(moving_on, mask) == pytest.approx(0.2)  # min(0.1, 0.9) + min(0.9, 0.1)
    assert coverage_loss(staying, mask) == pytest.approx(0.9)  # min(0.8, 0.9) + min(0.2, 0.1)
    assert coverage_loss(staying, torch.tensor([[True, False]])) == 0.0


@pytest.mark.parametrize(("override", "message"), [("model.arch=context", "need model.arch=attention"),
                                                   ("data.tgt.kind=word", "same token kind"),
                                                   ("train.label_smoothing=0.1", "label_smoothing")])
def test_copy_config_errors(override: str, message: str) -> None:
    config = apply_overrides(Config(), ["model.copy=true", override])
    with pytest.raises(ConfigError, match=message):
        registry.validate(config)


def test_truncation_happens_before_the_extension() -> None:
    """A source word cut off by truncation can not be copied: the target gets <unk> for it, not a dangling id."""
    tokenizer = build_tokenizer(apply_overrides(Config(), ["data.src.kind=word"]).data.src, ["a b"])
    vocab = Vocab(["a"])
    [example], _ = encode_pairs([Pair("a zz yy", "yy zz")], (tokenizer, tokenizer), (vocab, vocab), copy=True,
                                truncate_src=2)
    assert example.src == [4, 5]
    assert example.tgt == [2, UNK_ID, 5, 3]


def oov_reversal_pairs(count: int, seed: int) -> list[Pair]:
    """'copy w1 .. wn please' -> 'wn .. w1 done' with random six-letter words, each seen (almost) only once."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6)) for _ in range(rng.randint(2, 5))]
        pairs.append(Pair(f"copy {' '.join(words)} please", " ".join(reversed(words)) + " done"))
    return pairs


@pytest.mark.slow
def test_copy_outputs_words_outside_the_vocabulary(tmp_path: Path) -> None:
    config = apply_overrides(Config(), [
        "data.src.kind=word", "data.tgt.kind=word", "data.src.split_punctuation=false",
        "data.tgt.split_punctuation=false", "data.tgt.min_freq=5", "model.copy=true", "model.embedding_size=32",
        "model.hidden_size=64", "model.attention=dot", "model.dropout=0", "train.epochs=5", "data.batch_size=32",
        "train.lr=0.003"])
    translator = api.train(config, oov_reversal_pairs(2500, seed=1), out_dir=tmp_path / "run")
    test = oov_reversal_pairs(200, seed=2)
    assert all(word not in translator.vocabs[1].stoi for pair in test for word in pair.tgt.split()[:-1])
    outputs = translator.translate([pair.src for pair in test])
    accuracy = sum(output == pair.tgt for output, pair in zip(outputs, test, strict=True)) / len(test)
    assert accuracy >= 0.95, outputs[:5]


@pytest.fixture(scope="module")
def summarizer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small copying model trained with the CLI on toy 'documents' whose summary is their first two words."""
    folder = tmp_path_factory.mktemp("summarize")
    rng = random.Random(3)
    lines = []
    for _ in range(400):
        words = [rng.choice("abcdefgh") + rng.choice("abcdefgh") for _ in range(rng.randint(6, 12))]
        lines.append(f"{' '.join(words)}\t{' '.join(words[:2])}\n")
    data = folder / "docs.tsv"
    data.write_text("".join(lines), encoding="utf-8")
    out = folder / "run"
    code = cli.main(["train", "--train", str(data), "--out", str(out), "--tokens", "word", "--epochs", "3",
                     "model.copy=true", "model.hidden_size=32", "model.embedding_size=16", "data.batch_size=16"])
    assert code == 0
    return out, data


def test_summarize_limits_length_by_the_training_summaries(summarizer: tuple[Path, Path], tmp_path: Path) -> None:
    out = summarizer[0]
    translator = api.load_translator(out)
    assert translator.target_lengths == {"mean": 2.0, "p99": 2, "max": 2}
    assert translator.summary_length() == 3
    documents = tmp_path / "documents.txt"
    documents.write_text("aa bb cc dd ee ff gg\nhh gg ff ee dd cc bb aa\n", encoding="utf-8")
    summaries = tmp_path / "summaries.txt"
    assert cli.main(["summarize", "--model", str(out), "--input", str(documents), "--output", str(summaries)]) == 0
    lines = summaries.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert all(len(line.split()) <= 3 for line in lines)


def test_evaluate_reports_rouge(summarizer: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out, data = summarizer
    assert cli.main(["evaluate", "--model", str(out), "--data", str(data), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert {"rouge1", "rouge2", "rougeL"} <= set(scores)
    assert 0.0 <= scores["rouge2"] <= scores["rouge1"] <= 100.0


def repeated_bigrams(text: str) -> int:
    return sum(count - 1 for count in Counter(pairwise(text.split())).values())


@pytest.mark.slow
def test_coverage_reduces_repeated_bigrams(tmp_path: Path) -> None:
    """Copying 6-12 distinct letters: a briefly trained attention model repeats itself less with coverage."""
    rng = random.Random(1)
    letters = "abcdefghijklmnopqrst"
    train = [" ".join(rng.sample(letters, rng.randint(6, 12))) for _ in range(1000)]
    test = [" ".join(rng.sample(letters, rng.randint(6, 12))) for _ in range(300)]
    repeats = {}
    for coverage in (False, True):
        config = apply_overrides(Config(), [
            "data.src.kind=word", "data.tgt.kind=word", "data.src.split_punctuation=false",
            "data.tgt.split_punctuation=false", f"model.coverage={str(coverage).lower()}", "model.embedding_size=16",
            "model.hidden_size=32", "model.attention=bahdanau", "model.bidirectional=false", "model.dropout=0",
            "train.epochs=2", "data.batch_size=32", "train.lr=0.003"])
        translator = api.train(config, [Pair(text, text) for text in train], out_dir=tmp_path / str(coverage))
        repeats[coverage] = sum(map(repeated_bigrams, translator.translate(test)))
    assert repeats[True] < 0.9 * repeats[False], repeats
