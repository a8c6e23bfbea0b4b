"""Tests for text classification: labelled data, the Classifier and its poolings, metrics, training and the API."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import seq2seq
from seq2seq.api import load_translator
from seq2seq.config import Config, ModelConfig, apply_overrides
from seq2seq.data.examples import Example
from seq2seq.data.labels import read_labelled
from seq2seq.data.pairs import Pair, collate
from seq2seq.data.preparation import prepare_labelled
from seq2seq.data.truncation import cut_text
from seq2seq.errors import CheckpointError, ConfigError, DataError
from seq2seq.evaluation import metrics
from seq2seq.models.classifier import Classifier, last_states, read_padded, reverse_within
from seq2seq.models.encoder import Encoder
from seq2seq.models.objectives import classification_loss
from seq2seq.tasks import registry
from seq2seq.tasks.classify import TextClassifier, class_weights, load_classifier, train_classifier

TINY = ["data.src.kind=word", "data.src.split_punctuation=false", "model.hidden_size=32", "model.embedding_size=16",
        "train.precision=fp32"]
POOLINGS = ("last", "mean", "max", "attention", "concat")


def majority_pairs(count: int, seed: int, symbols: str = "abc") -> list[Pair]:
    """Sequences of 3-9 symbols labelled with the symbol that occurs most often (ties left out)."""
    rng, pairs = random.Random(seed), []
    while len(pairs) < count:
        sequence = [rng.choice(symbols) for _ in range(rng.randint(3, 9))]
        counts = sorted(((sequence.count(s), s) for s in symbols), reverse=True)
        if counts[0][0] > counts[1][0]:
            pairs.append(Pair(" ".join(sequence), counts[0][1]))
    return pairs


def tiny_config(*overrides: str) -> Config:
    return apply_overrides(Config(task="classify"), [*TINY, *overrides])


@pytest.mark.parametrize(("pooling", "rnn"), [("attention", "lstm"), ("mean", "gru"), ("max", "lstm"), ("last", "gru")])
def test_a_tiny_classifier_learns_the_majority_symbol(tmp_path: Path, pooling: str, rnn: str) -> None:
    config = tiny_config(f"model.pooling={pooling}", f"model.rnn={rnn}", "train.epochs=10", "train.metric=accuracy")
    classifier = train_classifier(config, majority_pairs(1500, 1), majority_pairs(200, 2), tmp_path)
    scores = classifier.evaluate(majority_pairs(300, 3))
    assert scores["accuracy"] >= 95.0, scores


def test_metrics_equal_scikit_learn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(0)
    references = [rng.choice("aabbbcd") for _ in range(200)]
    predictions = [r if rng.random() < 0.6 else rng.choice("abce") for r in references]  # d never predicted, e wrong
    scores = metrics.classification_scores(predictions, references)
    labels = sorted(set(references) | set(predictions))
    assert scores["accuracy"] == pytest.approx(100 * sklearn_metrics.accuracy_score(references, predictions))
    assert scores["macro_f1"] == pytest.approx(100 * sklearn_metrics.f1_score(references, predictions,
                                                                              average="macro", zero_division=0))
    precision, recall, f1, support = sklearn_metrics.precision_recall_fscore_support(
        references, predictions, labels=labels, zero_division=0)
    for k, label in enumerate(labels):
        found = scores["per_class"][label]
        assert (found["precision"], found["recall"], found["f1"]) == pytest.approx(
            (100 * precision[k], 100 * recall[k], 100 * f1[k]))
        assert found["support"] == support[k]
    assert metrics.confusion_matrix(predictions, references, labels) == \
        sklearn_metrics.confusion_matrix(references, predictions, labels=labels).tolist()


@pytest.mark.parametrize(("content", "message"), [
    ("a b\tx\n\ty\n", r"data.tsv:2: empty text"),
    ("a b\tx\nc d\t \n", r"data.tsv:2: empty label"),
    ("a b\tx\nc d\n", r"data.tsv:2: expected text<TAB>label, found no tab"),
    ("a b\t<unk>\n", r"data.tsv:1: bad label '<unk>'"),
])
def test_bad_tsv_lines_are_errors_naming_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "data.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_labelled(path)


@pytest.mark.parametrize(("line", "message"), [
    ('{"text": "a b", "label": 3}', r'data.jsonl:2: expected an object with string fields "text" and "label"'),
    ('{"label": "x"}', r'data.jsonl:2: expected an object with string fields "text" and "label"'),
    ('{"text": "  ", "label": "x"}', r"data.jsonl:2: empty text"),
    ('{"text": "a", "label": ""}', r"data.jsonl:2: empty label"),
    ('{"text": "a", "label": "x"', r"data.jsonl:2: invalid JSON"),
])
def test_bad_jsonl_lines_are_errors_naming_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "a b", "label": "x"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_labelled(path)


def test_jsonl_and_tsv_read_alike(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("one two\tx\nthree\ty\n", encoding="utf-8")
    (tmp_path / "a.jsonl").write_text('{"text": "one two", "label": "x"}\n{"text": "three", "label": "y"}\n',
                                      encoding="utf-8")
    assert [p[:2] for p in read_labelled(tmp_path / "a.tsv")] == [p[:2] for p in read_labelled(tmp_path / "a.jsonl")]


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize(("bidirectional", "bag"), [(True, False), (False, False), (True, True)])
@torch.no_grad()
def test_padding_changes_nothing_batched_equals_one_by_one(pooling: str, bidirectional: bool, bag: bool) -> None:
    torch.manual_seed(0)
    config = ModelConfig(hidden_size=8, embedding_size=4, pooling=pooling, bidirectional=bidirectional, num_layers=2,
                         bag_of_words=bag)
    model = Classifier(config, 12, 3).eval()
    if model.words is not None:
        model.words.weight.normal_()
        model.words.bias.normal_()
    examples = [Example([4, 5, 6, 7, 8], [0, 0]), Example([9], [0, 0]), Example([10, 11, 4], [0, 0])]
    batch = collate(examples)
    logits, weights = model.scores(batch.src, batch.src_lengths)
    for row, example in enumerate(examples):
        alone = collate([example])
        single, single_weights = model.scores(alone.src, alone.src_lengths)
        torch.testing.assert_close(logits[row], single[0])
        if pooling == "attention":
            assert weights is not None and single_weights is not None
            torch.testing.assert_close(weights[row, :len(example.src)], single_weights[0])
            assert float(weights[row, len(example.src):].sum()) == 0.0


@torch.no_grad()
def test_an_unfitted_bag_of_words_adds_nothing() -> None:
    torch.manual_seed(0)
    config = ModelConfig(hidden_size=8, embedding_size=4, dropout=0.0, pooling="max")
    plain = Classifier(config, 12, 3).eval()
    with_bag = Classifier(replace(config, bag_of_words=True), 12, 3).eval()
    with_bag.load_state_dict(plain.state_dict(), strict=False)
    batch = collate([Example([4, 5, 6, 5], [0, 0]), Example([9, 4], [0, 0])])
    torch.testing.assert_close(with_bag(batch.src, batch.src_lengths), plain(batch.src, batch.src_lengths))


def test_the_bag_of_words_is_refused_for_new_runs_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^model\.bag_of_words was removed: .* still load, classify and serve\)$"):
        train_classifier(tiny_config("model.bag_of_words=true"), majority_pairs(60, 1), out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_reverse_within_reverses_each_row_up_to_its_length() -> None:
    values = torch.arange(8.0).view(2, 4, 1)
    reversed_ = reverse_within(values, torch.tensor([3, 1]))
    assert reversed_.squeeze(-1).tolist() == [[2.0, 1.0, 0.0, 3.0], [4.0, 5.0, 6.0, 7.0]]
    torch.testing.assert_close(reverse_within(reversed_, torch.tensor([3, 1])), values)


@pytest.mark.parametrize(("rnn", "layers", "bidirectional"), [("gru", 1, True), ("lstm", 2, True), ("gru", 2, False),
                                                              ("lstm", 1, False)])
def test_reading_padded_equals_the_encoders_packed_run(rnn: str, layers: int, bidirectional: bool) -> None:
    torch.manual_seed(0)
    encoder = Encoder(20, 6, 8, layers, rnn, bidirectional, 0.0)
    lengths = torch.tensor([7, 2, 5, 1])
    real = torch.arange(7)[None, :] < lengths[:, None]  # (B, S)
    src = torch.randint(4, 20, (4, 7)).masked_fill(~real, 0)
    packed, final = encoder(src, lengths)
    padded = read_padded(encoder.rnn, encoder.embedding(src), lengths)
    torch.testing.assert_close(padded[real], packed[real])
    torch.testing.assert_close(last_states(padded, lengths, bidirectional), final[0][-1])
    weights = list(encoder.rnn.parameters())
    expected = torch.autograd.grad(packed[real].square().sum(), weights)
    for found, wanted in zip(torch.autograd.grad(padded[real].square().sum(), weights), expected, strict=True):
        torch.testing.assert_close(found, wanted)


def test_class_weights_are_inverse_frequency_and_weigh_the_loss() -> None:
    examples = [Example([4], [2, 4 + k, 3]) for k in (0, 0, 0, 1)]
    weights = class_weights(examples, 2)
    torch.testing.assert_close(weights, torch.tensor([4 / 6, 4 / 2]))
    model = Classifier(ModelConfig(hidden_size=8, embedding_size=4, dropout=0.0), 5, 2)
    batch = collate(examples)
    plain, count = classification_loss(model, batch)
    weighted, _ = classification_loss(model, batch, class_weights=weights)
    assert count == 4
    logits = model(batch.src, batch.src_lengths)
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 0, 0, 1]), weights, reduction="sum")
    torch.testing.assert_close(weighted, expected)
    assert not torch.allclose(plain, weighted)


@pytest.mark.parametrize(("overrides", "message"), [
    (["task=seq2seq", "train.metric=accuracy"], "does not apply to task seq2seq"),
    (["task=seq2seq", "train.class_weights=true"], "applies to task classify only"),
    (["task=speech", "model.bag_of_words=true"], "applies to task classify only"),
    (["task=lm", "model.init=runs/lm"], "model.init applies to tasks classify and seq2seq only, not lm"),
    (["task=seq2seq", "train.unfreeze_every=10"], "train.unfreeze_every applies to task classify only"),
    (["task=classify", "train.layer_lr_decay=0.5"], "train.layer_lr_decay must be at least 1"),
    (["task=classify", "train.metric=bleu"], "does not apply to task classify"),
    (["task=classify", "model.copy=true"], "do not apply to task classify"),
    (["task=classify", "model.pooling=sum"], "model.pooling must be one of"),
])
def test_config_errors(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        registry.validate(apply_overrides(Config(), overrides))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TextClassifier, Path]:
    out = tmp_path_factory.mktemp("classifier")
    config = tiny_config("train.epochs=3", "train.class_weights=true", "train.metric=macro_f1")
    return train_classifier(config, majority_pairs(600, 4), majority_pairs(100, 5), out), out


def test_load_gives_the_same_classifier(trained: tuple[TextClassifier, Path]) -> None:
    classifier, out = trained
    loaded = seq2seq.load(out)
    assert isinstance(loaded, TextClassifier)
    texts = [pair.src for pair in majority_pairs(20, 6)]
    before = [(c.label, c.top) for c in classifier.classify_detailed(texts, top_k=3)]
    assert [(c.label, c.top) for c in loaded.classify_detailed(texts, top_k=3)] == before
    with pytest.raises(CheckpointError, match="a classifier, not a translation model"):
        load_translator(out)


def test_classify_detailed(trained: tuple[TextClassifier, Path]) -> None:
    classifier, _ = trained
    found = classifier.classify_detailed(["a b b z", "c"], top_k=5)
    assert [len(f.top) for f in found] == [3, 3]  # only three labels exist
    assert found[0].tokens == ["a", "b", "b", "z"]
    assert found[0].attention is not None and found[0].attention.shape == (4,)
    assert float(found[0].attention.sum()) == pytest.approx(1.0)
    assert sum(p for _, p in found[0].top) == pytest.approx(1.0, abs=1e-5)
    assert classifier.classify(["a b b z", "c"]) == [f.label for f in found]
    with pytest.raises(TypeError, match="list of strings"):
        classifier.classify("a b")  # type: ignore[arg-type]


def test_resume_continues_to_the_same_weights(tmp_path: Path) -> None:
    train, dev = majority_pairs(300, 7), majority_pairs(50, 8)
    common = ("train.eval_every=6", "data.batch_size=32")
    whole = tiny_config("train.max_steps=12", *common)
    train_classifier(whole, train, dev, tmp_path / "whole")
    train_classifier(tiny_config("train.max_steps=6", *common), train, dev, tmp_path / "split")
    train_classifier(whole, train, dev, tmp_path / "split", resume=True)
    one, two = load_classifier(tmp_path / "whole"), load_classifier(tmp_path / "split")
    for name, weight in one.model.state_dict().items():
        torch.testing.assert_close(weight, two.model.state_dict()[name])


def test_the_shared_classification_data_reads(shared_data: Path) -> None:
    pairs = read_labelled(shared_data / "classify" / "train.tsv")
    assert len(pairs) == 48151
    assert len({pair.tgt for pair in pairs}) == 58


@pytest.mark.parametrize(("truncation", "limit", "kept"), [
    ("head", 4, "0 1 2 3"), ("head_tail", 4, "0 1 8 9"), ("head_tail", 5, "0 1 2 8 9"), ("head_tail", 1, "0"),
    ("head_tail", 10, "0 1 2 3 4 5 6 7 8 9"), ("head_tail", 0, "0 1 2 3 4 5 6 7 8 9")])
def test_a_long_text_keeps_its_first_tokens_or_both_ends(truncation: str, limit: int, kept: str) -> None:
    data = tiny_config(f"data.truncation={truncation}", f"data.max_src_length={limit}").data
    assert cut_text(list("0123456789"), data) == kept.split()


def test_head_tail_truncation_learns_what_only_the_end_of_a_text_says(tmp_path: Path) -> None:
    """Texts of 11-19 filler words and their label as the last word, read through 8 tokens: the head misses it."""
    rng = random.Random(0)
    pairs = [Pair(" ".join([*(rng.choice("defgh") for _ in range(rng.randint(11, 19))), label]), label)
             for label in "abc" * 400]
    rng.shuffle(pairs)
    train, dev, test = pairs[:1000], pairs[1000:1100], pairs[1100:]
    accuracy = {}
    for truncation in ("head", "head_tail"):
        config = tiny_config(f"data.truncation={truncation}", "data.max_src_length=8", "train.epochs=5",
                             "train.metric=accuracy")
        classifier = train_classifier(config, train, dev, tmp_path / truncation)
        accuracy[truncation] = classifier.evaluate(test)["accuracy"]
        assert classifier.classify_detailed([test[0].src])[0].tokens == cut_text(test[0].src.split(), config.data)
    assert accuracy["head_tail"] >= 90.0 and accuracy["head"] < 50.0, accuracy  # head: a guess among three


def test_truncation_applies_to_classifiers_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.truncation applies to task classify only"):
        seq2seq.train(apply_overrides(Config(), ["data.truncation=head_tail"]), [("a", "b")], out_dir=tmp_path)


def test_training_and_dev_texts_are_cut_alike() -> None:
    config = tiny_config("data.truncation=head_tail", "data.max_src_length=4")
    text = Pair("a b c d e f", "x")
    prepared = prepare_labelled(config, [text, Pair("f e d c b a", "y")], [text])
    texts = prepared.metadata.vocabs[0]
    assert prepared.examples[0].src == prepared.dev_examples[0].src == texts.encode(["a", "b", "e", "f"])
