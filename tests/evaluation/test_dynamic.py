"""Dynamic evaluation: a language model that learns from a text as it reads it predicts the text's second copy far
better than the static model; the model it started from, and its files, stay as they were; `evaluate --dynamic`
and `generate --adapt` on the command line, and their one-line refusals."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
import torch

from seq2seq.config import Config, apply_overrides
from seq2seq.data.lm_text import scored_stream
from seq2seq.data.tokenizers import CharTokenizer, Tokenizer, WordTokenizer
from seq2seq.data.vocab import Vocab
from seq2seq.errors import ConfigError
from seq2seq.evaluation.adaptation import Adaptation
from seq2seq.evaluation.dynamic import adapt
from seq2seq.models.language_model import LanguageModel
from seq2seq.tasks.lm import TextGenerator, stream_nll
from tests.cli.test_cli import one_line_error, run_cli
from tests.models.test_language_model import TINY, random_generator, text_file  # noqa: F401  (a fixture)

LETTERS = "abcdefghij "


def repeated_text(seed: int = 1) -> str:
    """A random 12-character string repeated 20 times: nothing a model knows, everything it can learn by reading."""
    rng = random.Random(seed)
    return "".join(rng.choice(LETTERS) for _ in range(12)) * 20


def second_copy_loss(generator: TextGenerator, text: str, adaptation: Adaptation | None) -> float:
    """Mean cross-entropy of the second of two copies of text (entries [text, text]), read after the first."""
    def nll(entries: list[str]) -> tuple[float, int]:
        stream = scored_stream(entries, generator.tokenizer, generator.vocab)
        if adaptation is None:
            return stream_nll(generator.model, stream, parts=1, window=10)
        return adapt(generator.model, stream, adaptation)[1:]
    (both, both_count), (first, first_count) = nll([text, text]), nll([text])
    return (both - first) / (both_count - first_count)


@pytest.mark.parametrize("adaptation", [Adaptation(lr=0.03, segment=10), Adaptation(lr=3.0, segment=10, rule="sgd")],
                         ids=["rms", "sgd"])
def test_reading_a_text_once_teaches_its_second_copy(adaptation: Adaptation) -> None:
    generator, text = random_generator(LETTERS), repeated_text()
    static = second_copy_loss(generator, text, None)
    assert static > 2.0  # the untrained model knows nothing of the string
    assert second_copy_loss(generator, text, adaptation) < 0.6 * static


@pytest.mark.parametrize(("rnn", "tokenizer"), [("gru", CharTokenizer()), ("lstm", WordTokenizer())])
def test_every_kind_of_language_model_adapts(rnn: str, tokenizer: Tokenizer) -> None:
    torch.manual_seed(0)
    text = " ".join(["the cat sat on a mat", "dogs ran far", "a bird flew"][index % 3] for index in range(30))
    config = apply_overrides(Config(), ["task=lm", f"model.rnn={rnn}", "model.hidden_size=16",
                                        "model.embedding_size=8", "model.dropout=0.0"])
    vocab = Vocab.build([tokenizer.tokenize(text)])
    generator = TextGenerator(LanguageModel(config.model, len(vocab)).eval(), config, tokenizer, vocab,
                              torch.device("cpu"))
    assert generator.evaluate([text], Adaptation(lr=0.03, segment=5))["bpc"] < 0.7 * generator.evaluate([text])["bpc"]


def test_decay_holds_the_weights_near_the_trained_ones() -> None:
    generator, text = random_generator(LETTERS), repeated_text()
    free = second_copy_loss(generator, text, Adaptation(lr=0.03, segment=10))
    held = second_copy_loss(generator, text, Adaptation(lr=0.03, segment=10, decay=0.5))
    static = second_copy_loss(generator, text, None)
    assert free < held < static


def test_the_model_it_started_from_is_unchanged() -> None:
    generator, text = random_generator(LETTERS), repeated_text()
    before = {name: tensor.clone() for name, tensor in generator.model.state_dict().items()}
    static = generator.evaluate([text])
    dynamic = generator.evaluate([text], Adaptation(lr=0.03, segment=10))
    assert dynamic["bpc"] < static["bpc"] and dynamic["characters"] == static["characters"]
    assert all(torch.equal(before[name], tensor) for name, tensor in generator.model.state_dict().items())
    assert generator.evaluate([text]) == static
    adapted = generator.adapted_to(text, Adaptation(lr=0.03, segment=10))
    assert adapted.model is not generator.model and adapted.evaluate([text])["bpc"] < static["bpc"]


def test_a_text_shorter_than_a_segment_is_scored_with_one_update() -> None:
    generator = random_generator(LETTERS)
    scores = generator.evaluate(["abc"], Adaptation(segment=1000))
    assert scores["characters"] == 4 and scores["bpc"] == pytest.approx(generator.evaluate(["abc"])["bpc"], rel=1e-5)


@pytest.mark.parametrize(("settings", "message"), [
    ({"lr": 0.0}, "lr must be above 0"), ({"decay": 1.0}, "decay in [0, 1)"), ({"segment": 0}, "segment at least 1"),
    ({"rule": "adam"}, "unknown adaptation rule 'adam' (choose rms or sgd)")])
def test_bad_adaptation_settings(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        Adaptation(**settings)


def digests(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def test_cli_evaluate_dynamic_and_generate_adapt(tmp_path: Path, text_file: Path) -> None:  # noqa: F811
    run = tmp_path / "run"
    assert run_cli("train", "--task", "lm", "--train", text_file, "--out", run, "--epochs", "1", *TINY)[0] == 0
    files = digests(run)
    evaluate = ("evaluate", "--model", run, "--data", text_file, "--json")
    static = json.loads(run_cli(*evaluate)[1])
    code, out, err = run_cli(*evaluate, "--dynamic", "--adapt-lr", "0.01", "--adapt-segment", "30")
    assert code == 0, err
    dynamic = json.loads(out)
    assert dynamic["bpc"] < static["bpc"] and dynamic["characters"] == static["characters"]
    code, out, err = run_cli("generate", "--model", run, "--prompt", "the cat sat", "--adapt", "--seed", "1",
                             "--max-length", "20")
    assert code == 0 and out.startswith("the cat sat"), err
    assert digests(run) == files  # nothing on disk changed
    line = one_line_error(*run_cli(*evaluate, "--dynamic", "--adapt-rule", "adam")[::2])
    assert "--adapt-rule: invalid choice: 'adam'" in line
    line = one_line_error(*run_cli(*evaluate, "--dynamic", "--adapt-decay", "1")[::2])
    assert "decay in [0, 1)" in line
    for argv in ((*evaluate, "--adapt-lr", "0.01"), ("generate", "--model", run, "--adapt-segment", "5")):
        line = one_line_error(*run_cli(*argv)[::2])
        assert "the adapting flags (--adapt-lr, --adapt-decay, --adapt-segment, --adapt-rule) apply with" in line


def test_cli_dynamic_refuses_other_tasks(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{word}\t{word[::-1]}\n" for word in ("abc", "bca", "cab") * 4), encoding="utf-8")
    run = tmp_path / "translator"
    assert run_cli("train", "--train", pairs, "--out", run, "--epochs", "1", "model.hidden_size=8",
                   "model.embedding_size=4", "data.dev_size=2")[0] == 0
    line = one_line_error(*run_cli("evaluate", "--model", run, "--data", pairs, "--dynamic")[::2])
    assert "--dynamic applies to language models (train --task lm) only" in line
