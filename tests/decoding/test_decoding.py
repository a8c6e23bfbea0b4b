"""Decoding: greedy, beam search and sampling agree with each other, with teacher forcing and with their knobs."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest
import torch

from seq2seq import api, cli
from seq2seq.config import Config, ModelConfig, apply_overrides
from seq2seq.data.examples import Example
from seq2seq.data.pairs import collate
from seq2seq.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from seq2seq.decoding import search
from seq2seq.decoding.search import (
    DecodingOptions,
    Hypothesis,
    ban_tokens,
    block_eos_before,
    block_repeated_ngrams,
    decode,
    keep_top_k,
    keep_top_p,
    max_lengths,
)
from seq2seq.errors import ConfigError
from seq2seq.models.decoder import DecoderState, Memory
from seq2seq.models.seq2seq import Seq2Seq
from tests.conftest import toy_pairs

ARCHITECTURES = [("context", "lstm", "general"), ("repeat", "gru", "general"), ("attention", "lstm", "bahdanau"),
                 ("attention", "gru", "dot")]
TOY_SETTINGS = ["model.arch=attention", "model.rnn=gru", "model.hidden_size=32", "model.embedding_size=16",
                "model.dropout=0.0", "data.src.kind=word", "data.tgt.kind=word", "data.src.split_punctuation=false",
                "data.tgt.split_punctuation=false", "data.batch_size=32", "train.precision=fp32", "train.lr=0.005",
                "train.threads=1", "train.epochs=3"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[api.Translator, Path]:
    """A small attention model trained for a few seconds on reversing sequences (right about half the time)."""
    run = tmp_path_factory.mktemp("runs") / "reverse"
    translator = api.train(apply_overrides(Config(), TOY_SETTINGS), toy_pairs("reverse", 1500, seed=1),
                           toy_pairs("reverse", 50, seed=2), run)
    return translator, run


@pytest.fixture(scope="module")
def held_out(trained: tuple[api.Translator, Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """40 held-out toy sources as a padded batch (B, S) and lengths (B,)."""
    translator = trained[0]
    ids = [translator.vocabs[0].encode(translator.tokenizers[0].tokenize(p.src)) for p in toy_pairs("reverse", 40, 3)]
    batch = collate([Example(source, [0]) for source in ids]).to(translator.device)
    return batch.src, batch.src_lengths


def tiny_model(arch: str = "attention", rnn: str = "lstm", attention: str = "general") -> Seq2Seq:
    torch.manual_seed(0)
    config = ModelConfig(arch=arch, rnn=rnn, attention=attention, num_layers=2, hidden_size=16, embedding_size=8,
                         dropout=0.0)
    return Seq2Seq(config, 12, 14).eval()


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    src = torch.randint(4, 12, (5, 7), generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([7, 3, 5, 1, 6])
    for row, length in enumerate(lengths):
        src[row, length:] = PAD_ID
    return src, lengths


def best(results: list[list[Hypothesis]]) -> list[Hypothesis]:
    return [found[0] for found in results]


def teacher_forced(model: Seq2Seq, src: torch.Tensor, lengths: torch.Tensor,
                   results: list[list[Hypothesis]]) -> list[list[list[float]]]:
    """Log-probability of every token of every hypothesis, recomputed by one teacher-forced forward pass in fp32."""
    rows = [(index, h.tokens) for index, found in enumerate(results) for h in found]
    tgt_out = torch.full((len(rows), max(len(tokens) for _, tokens in rows)), PAD_ID)
    for row, (_, tokens) in enumerate(rows):
        tgt_out[row, :len(tokens)] = torch.tensor(tokens)
    tgt_in = torch.cat([torch.full((len(rows), 1), BOS_ID), tgt_out[:, :-1]], dim=1)
    index = torch.tensor([i for i, _ in rows])
    with torch.no_grad():
        logits = model.project(model(src[index], lengths[index], tgt_in)).float()
    gathered = logits.log_softmax(dim=-1).gather(2, tgt_out.unsqueeze(2)).squeeze(2).tolist()
    flat = iter(row[:len(tokens)] for row, (_, tokens) in zip(gathered, rows, strict=True))
    return [[next(flat) for _ in found] for found in results]


def has_repeated_ngram(tokens: list[int], size: int) -> bool:
    grams = [tuple(tokens[i:i + size]) for i in range(len(tokens) - size + 1)]
    return len(grams) != len(set(grams))


# ---- strategies against each other

@pytest.mark.parametrize(("arch", "rnn", "attention"), ARCHITECTURES)
def test_beam_size_one_equals_greedy(arch: str, rnn: str, attention: str) -> None:
    model = tiny_model(arch, rnn, attention)
    src, lengths = padded_batch()
    greedy = best(decode(model, src, lengths, DecodingOptions(max_length=12)))
    beam = best(decode(model, src, lengths, DecodingOptions("beam", max_length=12, beam_size=1, length_penalty=0.0)))
    for one, other in zip(greedy, beam, strict=True):
        assert one.tokens == other.tokens
        assert one.log_prob == pytest.approx(other.log_prob, abs=1e-5)
        torch.testing.assert_close(torch.tensor(one.token_log_probs), torch.tensor(other.token_log_probs))


def test_beam_size_one_equals_greedy_when_trained(trained: tuple[api.Translator, Path],
                                                  held_out: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = trained[0].model
    greedy = best(decode(model, *held_out, DecodingOptions()))
    beam = best(decode(model, *held_out, DecodingOptions("beam", beam_size=1, length_penalty=0.0)))
    assert [h.tokens for h in greedy] == [h.tokens for h in beam]


def test_beam_never_scores_below_greedy(trained: tuple[api.Translator, Path],
                                        held_out: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = trained[0].model
    greedy = best(decode(model, *held_out, DecodingOptions()))
    beam = best(decode(model, *held_out, DecodingOptions("beam", beam_size=5, length_penalty=0.0)))
    assert all(b.log_prob >= g.log_prob - 1e-4 for g, b in zip(greedy, beam, strict=True))
    assert any(b.log_prob > g.log_prob + 1e-3 for g, b in zip(greedy, beam, strict=True))  # it does search


@pytest.mark.parametrize("options", [DecodingOptions(), DecodingOptions("beam", beam_size=4, n_best=3),
                                     DecodingOptions("sample", num_samples=3, top_k=5, seed=0)],
                         ids=["greedy", "beam", "sample"])
def test_scores_equal_teacher_forced_log_probs(trained: tuple[api.Translator, Path],
                                               held_out: tuple[torch.Tensor, torch.Tensor],
                                               options: DecodingOptions) -> None:
    model = trained[0].model
    results = decode(model, *held_out, options)
    for found, recomputed in zip(results, teacher_forced(model, *held_out, results), strict=True):
        for hypothesis, log_probs in zip(found, recomputed, strict=True):
            torch.testing.assert_close(torch.tensor(hypothesis.token_log_probs), torch.tensor(log_probs),
                                       rtol=1e-4, atol=1e-4)
            assert hypothesis.log_prob == pytest.approx(sum(log_probs), abs=1e-3)


@pytest.mark.parametrize(("arch", "rnn", "attention"), ARCHITECTURES)
def test_batched_beam_equals_one_by_one(arch: str, rnn: str, attention: str) -> None:
    model = tiny_model(arch, rnn, attention)
    src, lengths = padded_batch()
    options = DecodingOptions("beam", beam_size=3, n_best=2, length_penalty=0.6)
    batched = decode(model, src, lengths, options)
    for row, found in enumerate(batched):
        alone = decode(model, src[row:row + 1, :lengths[row]], lengths[row:row + 1], options)[0]
        assert [h.tokens for h in found] == [h.tokens for h in alone]
        assert [h.log_prob for h in found] == pytest.approx([h.log_prob for h in alone], abs=1e-5)
        if arch == "attention":
            for one, other in zip(found, alone, strict=True):
                assert one.attention is not None and other.attention is not None
                torch.testing.assert_close(one.attention, other.attention, rtol=1e-5, atol=1e-5)


def test_n_best_are_distinct_and_ranked(held_out: tuple[torch.Tensor, torch.Tensor],
                                        trained: tuple[api.Translator, Path]) -> None:
    alpha = 0.8
    results = decode(trained[0].model, *held_out, DecodingOptions("beam", beam_size=5, n_best=4, length_penalty=alpha))
    for found in results:
        assert len({tuple(h.tokens) for h in found}) == 4
        ranking = [h.log_prob / ((5 + len(h.tokens)) / 6) ** alpha for h in found]
        assert ranking == sorted(ranking, reverse=True)


def test_attention_has_one_row_per_token_and_one_column_per_source_token(
        trained: tuple[api.Translator, Path], held_out: tuple[torch.Tensor, torch.Tensor]) -> None:
    src, lengths = held_out
    for options in (DecodingOptions(), DecodingOptions("beam", n_best=2), DecodingOptions("sample", seed=1)):
        for found, length in zip(decode(trained[0].model, src, lengths, options), lengths.tolist(), strict=True):
            for hypothesis in found:
                assert hypothesis.attention is not None
                assert hypothesis.attention.shape == (len(hypothesis.tokens), length)
                torch.testing.assert_close(hypothesis.attention.sum(dim=1), torch.ones(len(hypothesis.tokens)))


def test_encoder_runs_once_per_sentence() -> None:
    """Beams and samples share their sentence's encoding: encode sees the B sentences once."""
    model, calls = tiny_model(), []

    class Counting:
        def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> Memory:
            calls.append(src.size(0))
            return model.encode(src, src_lengths)

        def init_state(self, memory: Memory) -> DecoderState:
            return model.init_state(memory)

        def step(self, tokens: torch.Tensor, state: DecoderState,
                 memory: Memory) -> tuple[torch.Tensor, DecoderState]:
            return model.step(tokens, state, memory)

    src, lengths = padded_batch()
    decode(Counting(), src, lengths, DecodingOptions("beam", beam_size=4))
    decode(Counting(), src, lengths, DecodingOptions("sample", num_samples=3))
    assert calls == [5, 5]


def test_beam_steps_only_the_sentences_not_done() -> None:
    """The first step runs once per sentence; later ones for the K beams of each sentence still searched."""
    model, rows = tiny_model("context", "gru"), []

    class Counting:
        def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> Memory:
            return model.encode(src, src_lengths)

        def init_state(self, memory: Memory) -> DecoderState:
            return model.init_state(memory)

        def step(self, tokens: torch.Tensor, state: DecoderState,
                 memory: Memory) -> tuple[torch.Tensor, DecoderState]:
            rows.append(tokens.size(0))
            return model.step(tokens, state, memory)

    src, lengths = padded_batch()  # untrained: most sentences run to their limits, which differ
    decode(Counting(), src, lengths, DecodingOptions("beam", beam_size=4))
    assert rows[:2] == [5, 20]
    assert rows[1:] == sorted(rows[1:], reverse=True) and all(count % 4 == 0 for count in rows[1:])
    assert rows[-1] < 20


def test_beam_scored_in_chunks_equals_all_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model()
    src, lengths = padded_batch()
    options = DecodingOptions("beam", beam_size=3, n_best=2, no_repeat_ngram_size=2, max_length=12)

    def outputs() -> list[tuple[list[int], float, list[float]]]:
        return [(h.tokens, h.log_prob, h.token_log_probs) for found in decode(model, src, lengths, options)
                for h in found]

    at_once = outputs()
    monkeypatch.setattr(search, "SCORING_CHUNK", 1)  # one sentence at a time
    assert outputs() == at_once


# ---- lengths and logits processors

@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_max_and_min_length_are_respected(strategy: str) -> None:
    model = tiny_model()
    src, lengths = padded_batch()
    for found in decode(model, src, lengths, DecodingOptions(strategy, max_length=4)):
        assert all(len(h.tokens) <= 4 for h in found)
    for found in decode(model, src, lengths, DecodingOptions(strategy, min_length=6, max_length=12)):
        for hypothesis in found:
            assert len([t for t in hypothesis.tokens if t != EOS_ID]) >= 6
            assert EOS_ID not in hypothesis.tokens[:-1]


def test_relative_max_length_default() -> None:
    assert max_lengths(torch.tensor([1, 4, 10])).tolist() == [22, 26, 35]  # ceil(1.5 * S) + 20
    assert max_lengths(torch.tensor([1, 4]), 7).tolist() == [7, 7]
    model = tiny_model("context", "gru")  # untrained: it rarely says </s>
    src, lengths = padded_batch()
    for found, limit in zip(decode(model, src, lengths, DecodingOptions()), max_lengths(lengths).tolist(),
                            strict=True):
        assert len(found[0].tokens) <= limit


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
@pytest.mark.parametrize("size", [1, 2, 3])
def test_no_repeated_ngram_of_the_blocked_size(strategy: str, size: int) -> None:
    model = tiny_model("context", "gru")  # untrained, it repeats itself a lot
    src, lengths = padded_batch()
    knobs = {"num_samples": 3, "temperature": 0.3, "seed": 0} if strategy == "sample" else {}
    unblocked = decode(model, src, lengths, DecodingOptions(strategy, max_length=15, **knobs))  # type: ignore[arg-type]
    assert any(has_repeated_ngram(h.tokens, size) for found in unblocked for h in found)
    options = DecodingOptions(strategy, max_length=15, no_repeat_ngram_size=size, **knobs)  # type: ignore[arg-type]
    blocked = decode(model, src, lengths, options)
    assert not any(has_repeated_ngram(h.tokens, size) for found in blocked for h in found)


def test_ban_unk_and_specials() -> None:
    """A model that prefers <pad>, <unk> and <s> to every other token never outputs <pad> or <s>; it outputs <unk>
    unless ban_unk is set."""
    model = tiny_model()
    with torch.no_grad():
        model.generator.bias[[PAD_ID, UNK_ID, BOS_ID]] += 20.0
    src, lengths = padded_batch()
    for strategy in ("greedy", "beam", "sample"):
        allowed = {t for found in decode(model, src, lengths, DecodingOptions(strategy, max_length=15))
                   for h in found for t in h.tokens}
        assert UNK_ID in allowed and not {PAD_ID, BOS_ID} & allowed, strategy
        banned = decode(model, src, lengths, DecodingOptions(strategy, ban_unk=True, max_length=15))
        assert not {UNK_ID, PAD_ID, BOS_ID} & {t for found in banned for h in found for t in h.tokens}, strategy


def test_processors_are_pure_and_mask_the_right_tokens() -> None:
    scores = torch.tensor([[0.0, 3.0, 1.0, 2.0, -1.0]])
    original = scores.clone()
    assert torch.isinf(keep_top_k(scores, torch.empty(1, 0), 2)).tolist() == [[True, False, True, False, True]]
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = ~torch.isinf(keep_top_p(probs.log(), torch.empty(1, 0), 0.75))
    assert kept.tolist() == [[True, True, False, False]]  # 0.5 + 0.3 reaches 0.75
    assert torch.isinf(ban_tokens(scores, torch.empty(1, 0), (1, 3))).tolist() == [[False, True, False, True, False]]
    assert torch.isinf(block_eos_before(scores, torch.empty(1, 2), 3))[0, EOS_ID]
    assert torch.equal(block_eos_before(scores, torch.empty(1, 3), 3), scores)
    history = torch.tensor([[4, 1, 4, 2, 4]])  # after "4", 1 and 2 would repeat a bigram
    assert torch.isinf(block_repeated_ngrams(scores, history, 2)).tolist() == [[False, True, True, False, False]]
    assert torch.equal(scores, original)


# ---- sampling

def test_cold_temperature_equals_greedy(trained: tuple[api.Translator, Path],
                                        held_out: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = trained[0].model
    greedy = best(decode(model, *held_out, DecodingOptions()))
    cold = best(decode(model, *held_out, DecodingOptions("sample", temperature=1e-4, seed=3)))
    assert [h.tokens for h in cold] == [h.tokens for h in greedy]


def test_higher_temperature_raises_the_entropy_of_samples(trained: tuple[api.Translator, Path],
                                                          held_out: tuple[torch.Tensor, torch.Tensor]) -> None:
    def distinct_outputs(temperature: float) -> int:
        options = DecodingOptions("sample", temperature=temperature, num_samples=20, seed=0)
        return sum(len({tuple(h.tokens) for h in found}) for found in decode(trained[0].model, *held_out, options))

    cool, neutral, hot = distinct_outputs(0.3), distinct_outputs(1.0), distinct_outputs(3.0)
    assert cool < neutral < hot


def test_same_seed_same_samples_other_seed_other_samples(trained: tuple[api.Translator, Path],
                                                         held_out: tuple[torch.Tensor, torch.Tensor]) -> None:
    def samples(seed: int) -> list[list[int]]:
        options = DecodingOptions("sample", num_samples=3, top_p=0.9, seed=seed)
        return [h.tokens for found in decode(trained[0].model, *held_out, options) for h in found]

    assert samples(1) == samples(1)
    assert samples(1) != samples(2)


# ---- options

@pytest.mark.parametrize(("options", "message"), [
    ({"strategy": "sample", "beam_size": 5}, "beam_size applies only to strategy 'beam', not 'sample'"),
    ({"strategy": "beam", "temperature": 0.7}, "temperature applies only to strategy 'sample', not 'beam'"),
    ({"temperature": 0.7}, "temperature applies only to strategy 'sample', not 'greedy'"),
    ({"n_best": 2}, "n_best applies only to strategy 'beam', not 'greedy'"),
    ({"strategy": "beam", "seed": 1}, "seed applies only to strategy 'sample', not 'beam'"),
    ({"strategy": "nucleus"}, "unknown decoding strategy 'nucleus' (choose greedy, beam, sample, ctc)"),
    ({"strategy": "beam", "beam_size": 2, "n_best": 3}, "n_best must be between 1 and beam_size=2, not 3"),
    ({"strategy": "beam", "beam_size": 0}, "beam_size must be >= 1, not 0"),
    ({"strategy": "sample", "temperature": 0.0}, "temperature must be > 0, not 0.0"),
    ({"strategy": "sample", "top_p": 1.5}, "top_p must be in (0, 1], not 1.5"),
    ({"strategy": "sample", "top_k": 0}, "top_k must be >= 1, not 0"),
    ({"min_length": 5, "max_length": 5}, "min_length=5 leaves no room for </s> within max_length=5"),
])
def test_misapplied_or_bad_knobs_raise_one_clear_error(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        DecodingOptions(**options)  # type: ignore[arg-type]


# ---- Python API and command line

def test_translate_returns_lists_for_several_outputs(trained: tuple[api.Translator, Path]) -> None:
    translator, texts = trained[0], ["a b c", "d e f g"]
    assert all(isinstance(text, str) for text in translator.translate(texts))
    beams = translator.translate(texts, strategy="beam", beam_size=5, length_penalty=1.0, n_best=3)
    samples = translator.translate(texts, strategy="sample", temperature=0.7, top_k=20, num_samples=5, seed=1)
    assert [len(found) for found in beams] == [3, 3] and [len(found) for found in samples] == [5, 5]
    assert samples == translator.translate(texts, strategy="sample", temperature=0.7, top_k=20, num_samples=5, seed=1)
    detailed = translator.translate_detailed(texts, DecodingOptions("beam", n_best=2))
    assert [[t.text for t in found] for found in detailed] == [found[:2] for found in beams]
    first = detailed[1][0]
    assert first.src_tokens == ["d", "e", "f", "g"]
    assert first.attention is not None and first.attention.shape == (len(first.tokens), 4)


def run_cli(*args: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def test_cli_n_best_with_scores(trained: tuple[api.Translator, Path], tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("a b c\nd e f g\n", encoding="utf-8")
    code, out, err = run_cli("translate", "--model", trained[1], "--input", source, "--strategy", "beam",
                             "--n-best", "3", "--scores")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 6
    for line in lines:
        score, text = line.split("\t")
        assert float(score) <= 0.0 and text
    expected = trained[0].translate(["a b c", "d e f g"], strategy="beam", n_best=3)
    assert [line.split("\t")[1] for line in lines] == [text for found in expected for text in found]


def test_cli_rejects_a_flag_of_another_strategy(trained: tuple[api.Translator, Path]) -> None:
    code, _, err = run_cli("translate", "--model", trained[1], "--input", "unused.txt", "--temperature", "0.5")
    assert code == 1
    assert err == "seq2seq translate: error: temperature applies only to strategy 'sample', not 'greedy'\n"


def test_cli_evaluate_with_beam(trained: tuple[api.Translator, Path], tmp_path: Path) -> None:
    """References are the model's own beam-3 outputs, some of which greedy search misses: evaluate --strategy beam
    --beam-size 3 matches them all, and the same command without them (greedy) does not."""
    translator = trained[0]
    sources = sorted({p.src for p in toy_pairs("reverse", 200, 4)})
    beam = translator.translate(sources, strategy="beam", beam_size=3)
    greedy = translator.translate(sources)
    differ = [i for i, text in enumerate(beam) if text and text != greedy[i]]
    agree = [i for i, text in enumerate(beam) if text and text == greedy[i]]
    assert differ and agree  # the data tells the two strategies apart
    data = tmp_path / "test.tsv"
    data.write_text("".join(f"{sources[i]}\t{beam[i]}\n" for i in differ + agree[:10]), encoding="utf-8")
    code, out, err = run_cli("evaluate", "--model", trained[1], "--data", data, "--strategy", "beam",
                             "--beam-size", "3", "--json")
    assert code == 0, err
    scores = json.loads(out)
    assert scores["exact_match"] == 100.0 and scores["bleu"] == pytest.approx(100.0)
    code, out, err = run_cli("evaluate", "--model", trained[1], "--data", data, "--json")
    assert code == 0, err
    assert json.loads(out)["exact_match"] == pytest.approx(100.0 * 10 / (len(differ) + 10), abs=1e-3)


def test_cli_plot_attention_writes_one_png_per_input(trained: tuple[api.Translator, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    source = tmp_path / "in.txt"
    source.write_text("a b c\nd e f g h\nj\n", encoding="utf-8")
    code, _, err = run_cli("translate", "--model", trained[1], "--input", source, "--output", tmp_path / "out.txt",
                           "--plot-attention", tmp_path / "plots")
    assert code == 0, err
    pngs = sorted((tmp_path / "plots").iterdir())
    assert [p.name for p in pngs] == ["0001.png", "0002.png", "0003.png"]
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in pngs)
    assert len((tmp_path / "out.txt").read_text(encoding="utf-8").splitlines()) == 3
