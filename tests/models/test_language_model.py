"""Language model: stepwise == whole sequence, learning a phrase, temperature and seeds, </s>, bits per character,
text readers and their bad input, checkpoints, and the CLI (train --task lm / generate / evaluate) end to end."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections import Counter
from pathlib import Path

import pytest
import torch

import seq2seq
from seq2seq.config import Config, ModelConfig, apply_overrides
from seq2seq.data.lm_text import count_characters, encode_stream
from seq2seq.data.text import read_entries, windows
from seq2seq.data.tokenizers import CharTokenizer
from seq2seq.data.vocab import BOS_ID, EOS_ID, UNK_ID, Vocab
from seq2seq.decoding.search import greedy
from seq2seq.errors import ConfigError, DataError
from seq2seq.models import architectures
from seq2seq.models.language_model import LanguageModel
from seq2seq.tasks import registry
from seq2seq.tasks.lm import TextGenerator, train_language_model
from seq2seq.training.checkpoint import load_checkpoint
from tests.cli.test_cli import model_tensors, one_line_error, run_cli

PHRASE = "the cat sat on the mat"
TINY = ["data.entries=line", "model.hidden_size=48", "model.embedding_size=16", "model.dropout=0.0",
        "data.window=24", "data.batch_size=16", "train.precision=fp32", "train.lr=0.01", "train.seed=1"]


@pytest.fixture(scope="module")
def phrase_model(tmp_path_factory: pytest.TempPathFactory) -> TextGenerator:
    """A char LM trained (about 2 s) on 100 lines holding the same phrase."""
    config = apply_overrides(Config(), [*TINY, "train.epochs=12"])
    return train_language_model(config, [PHRASE] * 100, out_dir=tmp_path_factory.mktemp("runs") / "phrase")


def random_generator(text: str = "abcdefgh", **data: int) -> TextGenerator:
    """An untrained char LM over the characters of text (its logits are small: a spread-out distribution)."""
    torch.manual_seed(0)
    config = apply_overrides(Config(), ["task=lm", "model.hidden_size=16", "model.embedding_size=8",
                                        "model.num_layers=2", "model.dropout=0.0",
                                        *(f"data.{key}={value}" for key, value in data.items())])
    vocab = Vocab.build([list(text)])
    return TextGenerator(LanguageModel(config.model, len(vocab)).eval(), config, CharTokenizer(), vocab,
                         torch.device("cpu"))


# ---- the model: prompt and steps read the text exactly as the whole sequence does
KINDS = {"lstm": {"rnn": "lstm"}, "gru": {"rnn": "gru"}, "lstm-one-hot": {"rnn": "lstm", "one_hot": True},
         "gru-one-hot": {"rnn": "gru", "one_hot": True},
         "gru-adaptive": {"rnn": "gru", "adaptive_softmax": [5, 8]},
         "transformer": {"arch": "transformer", "heads": 4, "feedforward_size": 32},
         "transformer-learned": {"arch": "transformer", "heads": 4, "feedforward_size": 32, "positions": "learned"},
         "transformer-adaptive": {"arch": "transformer", "heads": 4, "feedforward_size": 32, "adaptive_softmax": [6]}}


@pytest.mark.parametrize("kind", list(KINDS))
def test_prompt_then_steps_equal_whole_sequence(kind: str) -> None:
    """Prompts of different lengths in one batch, then one step per token, give the logits of forward()."""
    torch.manual_seed(0)
    config = ModelConfig(hidden_size=16, embedding_size=8, num_layers=2, dropout=0.0, **KINDS[kind])  # type: ignore[arg-type]
    model = architectures.language_model(config, 12).eval()
    text = torch.randint(4, 12, (3, 9))
    text[:, 0] = BOS_ID
    lengths = torch.tensor([4, 1, 2])  # prompt = <s> + lengths - 1 tokens
    prompts = text[:, :4].masked_fill(torch.arange(4) >= lengths[:, None], 0)
    with torch.no_grad():
        whole = model.generator(model(text))  # (B, T, V)
        memory = model.encode(prompts, lengths)
        state = model.init_state(memory)
        logits, state = model.step(torch.full((3,), BOS_ID), state, memory)  # the start token is not read
        rows = torch.arange(3)
        torch.testing.assert_close(logits, whole[rows, lengths - 1], rtol=1e-5, atol=1e-5)
        logits, state = model.step(text[rows, lengths], state, memory)  # each row's own next token
        torch.testing.assert_close(logits, whole[rows, lengths], rtol=1e-5, atol=1e-5)
        # after a common prompt of 2 tokens, read one token per step
        memory = model.encode(text[:, :2], torch.full((3,), 2))
        logits, state = model.step(torch.full((3,), BOS_ID), model.init_state(memory), memory)
        stepped = [logits]
        for t in range(2, 9):
            logits, state = model.step(text[:, t], state, memory)
            stepped.append(logits)
    torch.testing.assert_close(torch.stack(stepped, dim=1), whole[:, 1:], rtol=1e-5, atol=1e-5)


# ---- learning and generating
def test_the_first_step_spends_the_prompt_output() -> None:
    """The state after the prompt holds its last output as `prompt_output`, as declared; the first step drops it."""
    model = LanguageModel(ModelConfig(num_layers=2, hidden_size=16, embedding_size=8, dropout=0.0), 12).eval()
    memory = model.encode(torch.tensor([[1, 5, 6], [1, 7, 0]]), torch.tensor([3, 2]))
    state = model.init_state(memory)
    assert dict(state.axes) == model.state_axes() and "prompt_output" in state
    _, stepped = model.step(torch.tensor([1, 1]), state, memory)
    assert list(stepped.tensors) == ["hidden0", "hidden1"]


def test_learns_a_phrase_and_greedy_reproduces_it(phrase_model: TextGenerator) -> None:
    """decoding.greedy, unchanged, writes the phrase from <s>; a prompt is continued from its last character."""
    decoded = greedy(phrase_model.model, torch.tensor([[BOS_ID]]), torch.tensor([1]), 40)
    assert "".join(phrase_model.vocab.decode(decoded.tokens[0].tolist())) == PHRASE
    assert decoded.tokens[0, len(PHRASE)] == EOS_ID
    assert phrase_model.generate("the c", temperature=0, stop_at_end=True) == [PHRASE]
    assert phrase_model.generate("the cat sat on the m", temperature=0, stop_at_end=True) == [PHRASE]


def test_stops_at_end_only_when_asked(phrase_model: TextGenerator) -> None:
    """With stop_at_end a text ends at </s>; without, </s> is never chosen and every text is max_length long."""
    assert phrase_model.generate("", temperature=0.5, num=3, seed=1, stop_at_end=True, max_length=60) == [PHRASE] * 3
    texts = phrase_model.generate("", temperature=0.5, num=3, seed=1, max_length=60)
    assert [len(text) for text in texts] == [60] * 3 and all(text.startswith(PHRASE) for text in texts)


def test_precision_is_a_setting_of_generation_and_evaluation(phrase_model: TextGenerator) -> None:
    """fp32 is the default; under bf16 the scores change, and streaming (autocast entered step by step) still writes
    what generate writes."""
    bf16 = dataclasses.replace(phrase_model, precision="bf16")
    assert phrase_model.precision == "fp32"
    assert bf16.evaluate([PHRASE])["cross_entropy"] != phrase_model.evaluate([PHRASE])["cross_entropy"]
    knobs = {"temperature": 1.5, "seed": 3, "max_length": 40}
    assert "the" + "".join(bf16.stream("the", **knobs)) == bf16.generate("the", **knobs)[0]


def test_temperature_near_zero_equals_greedy() -> None:
    generator = random_generator()
    for prompt in ("", "abc", "hhh"):
        assert generator.generate(prompt, temperature=1e-4, num=2, seed=3, max_length=30) == \
            generator.generate(prompt, temperature=0, max_length=30) * 2


def test_higher_temperature_gives_higher_entropy() -> None:
    """The entropy of the drawn characters grows with the temperature."""
    generator = random_generator()

    def entropy(temperature: float) -> float:
        counts = Counter("".join(generator.generate("", temperature=temperature, num=8, seed=1, max_length=100)))
        total = sum(counts.values())
        return -sum(n / total * math.log2(n / total) for n in counts.values())

    low, middle, high = entropy(0.02), entropy(0.1), entropy(1.0)
    assert low < middle < high


def test_same_seed_same_text() -> None:
    generator = random_generator()
    first = generator.generate("ab", num=3, seed=7, max_length=50)
    assert generator.generate("ab", num=3, seed=7, max_length=50) == first
    assert generator.generate("ab", num=3, seed=8, max_length=50) != first
    assert len(set(first)) == 3 and all(text.startswith("ab") for text in first)


def test_unseen_prompt_characters_read_as_unk(caplog: pytest.LogCaptureFixture) -> None:
    """The model reads characters it never saw as <unk>; the returned text keeps them as written."""
    generator = random_generator()
    assert generator.vocab.encode(generator.tokenizer.tokenize("aé")) == [generator.vocab.stoi["a"], UNK_ID]
    with caplog.at_level(logging.WARNING):
        texts = generator.generate("aé€", temperature=0, max_length=5)
    assert texts[0].startswith("aé€") and len(texts[0]) == 8
    assert "2 tokens never seen in training" in caplog.text


def test_bad_generation_settings() -> None:
    generator = random_generator()
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        generator.generate("a", temperature=-1.0)
    with pytest.raises(ConfigError, match="top_k applies only to strategy 'sample'"):
        generator.generate("a", temperature=0, top_k=3)
    with pytest.raises(ConfigError, match="max_length must be at least 1"):
        generator.generate("a", max_length=0)


# ---- held-out scores
def test_bits_per_character_equal_hand_computation() -> None:
    """Read window by window with the state carried, the text scores as one pass over the whole stream does."""
    generator = random_generator(batch_size=1, window=3)
    entries = ["abcab", "ba", "hgf"]
    scores = generator.evaluate(entries)
    stream = torch.tensor(encode_stream([list(e) for e in entries], generator.vocab))
    with torch.no_grad():
        log_probs = generator.model.generator(generator.model(stream[None, :-1]))
    nll = -log_probs[0].log_softmax(-1).gather(1, stream[1:, None])[:, 0]  # (T,)
    nll = nll[stream[1:] != BOS_ID]  # predicting <s> after </s> is not text
    characters = sum(len(e) + 1 for e in entries)
    assert scores["tokens"] == characters == count_characters(entries) == len(nll)
    assert scores["bpc"] == pytest.approx(float(nll.sum()) / math.log(2) / characters, rel=1e-5)
    assert scores["cross_entropy"] == pytest.approx(float(nll.mean()), rel=1e-5)
    assert scores["bpc"] == pytest.approx(scores["cross_entropy"] / math.log(2), rel=1e-6)
    assert scores["perplexity"] == pytest.approx(math.exp(scores["cross_entropy"]), rel=1e-6)


def test_a_transformer_scores_each_token_after_at_least_half_a_window() -> None:
    """Windows of 6 overlapping by 3: every token is scored once, from the text since the start of its window, as
    reading that context alone for that one token scores it."""
    torch.manual_seed(0)
    config = apply_overrides(Config(), ["task=lm", "model.arch=transformer", "model.hidden_size=16", "model.heads=4",
                                        "model.feedforward_size=32", "model.dropout=0.0", "data.batch_size=1",
                                        "data.window=6"])
    entries = ["abcabdcb", "ba", "hgfedcba"]
    vocab = Vocab.build([list("abcdefgh")])
    model = architectures.language_model(config.model, len(vocab)).eval()
    scores = TextGenerator(model, config, CharTokenizer(), vocab, torch.device("cpu")).evaluate(entries)
    stream = torch.tensor(encode_stream([list(e) for e in entries], vocab))
    nll = []
    with torch.no_grad():
        for position in range(len(stream) - 1):
            start = max(0, position // 3 * 3 - 3)  # the window that scores it begins half a window earlier
            log_probs = model.generator(model(stream[None, start:position + 1]))[0, -1].log_softmax(-1)
            if stream[position + 1] != BOS_ID:
                nll.append(-float(log_probs[stream[position + 1]]))
    assert scores["tokens"] == len(nll) == count_characters(entries)
    assert scores["cross_entropy"] == pytest.approx(sum(nll) / len(nll), rel=1e-5)


def test_evaluation_in_parallel_parts_is_close() -> None:
    """Cutting the stream into rows read in parallel only loses the context at each row's start."""
    text = ["abcdefgh" * 8] * 4
    whole = random_generator(batch_size=1, window=16).evaluate(text)
    parts = random_generator(batch_size=4, window=16).evaluate(text)
    assert parts["tokens"] == whole["tokens"]
    assert parts["bpc"] == pytest.approx(whole["bpc"], rel=0.05)


# ---- text readers
def test_read_entries_modes(tmp_path: Path) -> None:
    path = tmp_path / "fortunes.txt"
    path.write_bytes(b"\xef\xbb\xbfOne\r\n  two\r\n%\r\n\r\n%\r\nThree\r\n")
    assert read_entries(path) == ["One\n  two\n%\n\n%\nThree"]
    assert read_entries(path, "line") == ["One", "  two", "%", "%", "Three"]
    assert read_entries(path, "delimiter") == ["One\n  two", "Three"]
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("second\n", encoding="utf-8")
    (folder / "sub" / "a.txt").write_text("third", encoding="utf-8")
    (folder / "a.txt").write_text("first\n\n", encoding="utf-8")
    (folder / ".hidden").write_text("skipped", encoding="utf-8")
    assert read_entries(folder) == ["first\n", "second", "third"]


@pytest.mark.parametrize(("content", "message"), [
    (b"", "text.txt: no text (the file is empty)"),
    (b"\n \n", "text.txt: no text (the file is empty)"),
    (b"text\n\x89PNG\r\n\x1a\n", "text.txt:2: not valid UTF-8 (byte 0x89 at column 1)"),
    (b"ok\nab\x00cd\n", "text.txt:2: NUL byte (a binary file, not text)"),
])
def test_bad_text_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "text.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(f"{path.parent}/{message}")):
        read_entries(path)


def test_missing_text(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothing\.txt: no such file or folder"):
        read_entries(tmp_path / "nothing.txt")
    with pytest.raises(DataError, match="no files in this folder"):
        read_entries(tmp_path)


def test_windows_cover_the_stream() -> None:
    stream = list(range(4, 27))  # 23 ids: 22 predictions
    parts = windows(stream, 5)
    assert [len(w.tgt) for w in parts] == [6, 6, 6, 6, 3]
    assert [i for w in parts for i in w.tgt[1:]] == stream[1:]
    assert all(w.src == [] for w in parts)


def test_lm_config_rejects_knobs_that_do_not_apply() -> None:
    with pytest.raises(ConfigError, match="teacher_forcing does not apply to task lm"):
        registry.validate(apply_overrides(Config(), ["task=lm", "train.teacher_forcing=0.5"]))
    with pytest.raises(ConfigError, match=r"train\.metric=bleu does not apply to task lm"):
        registry.validate(apply_overrides(Config(), ["task=lm", "train.metric=bleu"]))
    with pytest.raises(ConfigError, match=r"data\.entries must be one of file, line, delimiter"):
        apply_overrides(Config(), ["data.entries=paragraph"])


# ---- checkpoints and the command line
@pytest.fixture(scope="module")
def text_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("text") / "phrases.txt"
    path.write_text("".join(f"{PHRASE}\n%\n" for _ in range(60)), encoding="utf-8")
    return path


def test_cli_train_generate_evaluate(tmp_path: Path, text_file: Path) -> None:
    run = tmp_path / "run"
    code, out, err = run_cli("train", "--task", "lm", "--train", text_file, "--out", run, "--epochs", "8",
                             "--test", text_file, *TINY, "data.entries=delimiter", "data.dev_size=2")
    assert code == 0, err
    assert f"model saved in {run}" in out and "bits per character" in out
    metadata = load_checkpoint(run / "best.safetensors")[1]
    assert metadata["task"] == "lm" and metadata["config"]["task"] == "lm"
    assert isinstance(seq2seq.load(run), TextGenerator)
    generate = ("generate", "--model", run, "--num", "2", "--seed", "5", "--max-length", "30")
    code, first, err = run_cli(*generate, "--prompt", "the c")
    assert code == 0, err
    assert first.count("\n%\n") == 1 and first.startswith("the c") and first == run_cli(*generate, "--prompt",
                                                                                         "the c")[1]
    code, out, err = run_cli("generate", "--model", run, "--temperature", "0", "--stop-at-end")
    assert (code, out) == (0, PHRASE + "\n"), err
    code, out, err = run_cli("evaluate", "--model", run, "--data", text_file, "--json")
    assert code == 0, err
    scores = json.loads(out)
    assert set(scores) == {"cross_entropy", "perplexity", "bpc", "tokens", "characters"}
    assert scores["bpc"] < 0.5 and scores["tokens"] == scores["characters"] == 60 * (len(PHRASE) + 1)
    code, out, err = run_cli("evaluate", "--model", run, "--data", text_file, "--json", "--precision", "bf16")
    assert code == 0 and json.loads(out)["bpc"] != scores["bpc"], err
    code, out, err = run_cli("generate", "--model", run, "--temperature", "0", "--stop-at-end", "--precision", "bf16")
    assert code == 0 and out.startswith(PHRASE[:10]), err


def test_cli_resume_continues_exactly(tmp_path: Path, text_file: Path) -> None:
    """Two epochs at once or one, then --resume to two: the same weights."""
    args = ("train", "--task", "lm", "--train", text_file, *TINY, "train.eval_every=0")
    assert run_cli(*args, "--out", tmp_path / "once", "--epochs", "2")[0] == 0
    assert run_cli(*args, "--out", tmp_path / "twice", "--epochs", "1")[0] == 0
    code, _, err = run_cli(*args, "--out", tmp_path / "twice", "--epochs", "2", "--resume")
    assert code == 0, err
    once, twice = model_tensors(tmp_path / "once" / "last.safetensors"), model_tensors(tmp_path / "twice" /
                                                                                      "last.safetensors")
    assert once.keys() == twice.keys() and all(torch.equal(once[k], twice[k]) for k in once)


def test_cli_bad_input(tmp_path: Path, text_file: Path) -> None:
    """Empty, binary and missing text, and a language model given to translate: one line each."""
    empty, binary = tmp_path / "empty.txt", tmp_path / "image.png"
    empty.write_text("", encoding="utf-8")
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    for data, message in ((empty, f"{empty}: no text"), (binary, f"{binary}:1: not valid UTF-8"),
                          (tmp_path / "gone.txt", "gone.txt: no such file or folder")):
        line = one_line_error(*run_cli("train", "--task", "lm", "--train", data, "--out", tmp_path / "r")[::2])
        assert line.startswith("seq2seq train: error: ") and message in line
    run = tmp_path / "run"
    assert run_cli("train", "--task", "lm", "--train", text_file, "--out", run, "--epochs", "1", *TINY)[0] == 0
    line = one_line_error(*run_cli("translate", "--model", run, "--input", text_file)[::2])
    assert f"{run}: a language model, not a translation model (use seq2seq generate)" in line
    line = one_line_error(*run_cli("generate", "--model", run, "--temperature", "0", "--num", "2")[::2])
    assert "num_samples applies only to strategy 'sample'" in line
