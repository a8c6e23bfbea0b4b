"""Tokenizers: char / word / subword round trips, Moses punctuation, and rebuilding each from its dict."""

from __future__ import annotations

import json
import pickle

import pytest

from seq2seq.config import TokenizerConfig
from seq2seq.data.tokenizers import (
    CharTokenizer,
    SubwordTokenizer,
    Tokenizer,
    WordTokenizer,
    build_tokenizer,
    tokenizer_from_dict,
)
from seq2seq.errors import DataError

TEXTS = ["Hello, world!", "  two  spaces ", "Ünïcödé café — ok", "tab\there", ""]
CORPUS = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "the mat and the log are flat",
          "cats and dogs sat on mats", "a flat log on a flat mat"] * 4


@pytest.fixture(scope="module")
def subword() -> SubwordTokenizer:
    return SubwordTokenizer.train(CORPUS, vocab_size=30)


def rebuilt(tokenizer: Tokenizer) -> Tokenizer:
    """The tokenizer rebuilt from its dict after a trip through JSON (as checkpoints store it)."""
    return tokenizer_from_dict(json.loads(json.dumps(tokenizer.to_dict())))


# ---- characters

@pytest.mark.parametrize("text", TEXTS)
def test_char_round_trip(text: str) -> None:
    tokenizer = CharTokenizer()
    tokens = tokenizer.tokenize(text)
    assert len(tokens) == len(text) and all(len(token) == 1 for token in tokens)
    assert tokenizer.detokenize(tokens) == text


def test_char_lowercase() -> None:
    assert CharTokenizer(lowercase=True).tokenize("AbÇ D") == ["a", "b", "ç", " ", "d"]
    assert CharTokenizer().tokenize("Ab") == ["A", "b"]


# ---- words

@pytest.mark.parametrize(("text", "tokens"), [
    ("Hello, world!", ["Hello", ",", "world", "!"]),
    ("I don't know.", ["I", "don", "'t", "know", "."]),
    ('He said "hi" (twice).', ["He", "said", '"', "hi", '"', "(", "twice", ")", "."]),
    ("It costs $5.50, ok?", ["It", "costs", "$", "5.50", ",", "ok", "?"]),
    ("A & B", ["A", "&", "B"]),  # not escaped to &amp;
])
def test_word_splits_punctuation_and_detokenizes_back(text: str, tokens: list[str]) -> None:
    tokenizer = WordTokenizer()
    assert tokenizer.tokenize(text) == tokens
    assert tokenizer.detokenize(tokens) == text


def test_word_without_punctuation_splitting_is_whitespace_splitting() -> None:
    tokenizer = WordTokenizer(split_punctuation=False)
    assert tokenizer.tokenize("  Hello,  world! \t x ") == ["Hello,", "world!", "x"]
    assert tokenizer.detokenize(["Hello,", "world!", "x"]) == "Hello, world! x"


def test_word_lowercase() -> None:
    assert WordTokenizer(lowercase=True).tokenize("The CAT, Ça") == ["the", "cat", ",", "ça"]
    assert WordTokenizer(lowercase=True, split_punctuation=False).tokenize("The CAT,") == ["the", "cat,"]


def test_word_follows_its_language_rules() -> None:
    """French Moses rules keep the elided article with its apostrophe; English ones split before it."""
    assert WordTokenizer(language="fr").tokenize("l'homme") == ["l'", "homme"]
    assert WordTokenizer(language="en").tokenize("l'homme") == ["l", "'homme"]


PERIOD_CASES = ["Mr. Smith met Dr. Who at 5 p.m. today.", "See No. 5 and no. six.", "e.g. this, i.e. that. Next.",
                "U.S.A. is big. ça va. Ärger. élan. 123. x.y. Über.", "Version 2. then 3. And A. B. c. d.",
                "Section 4. b. of the ÉTÉ. γράμμα. Ωμέγα. ok."]


@pytest.mark.parametrize("language", ["en", "fr", "de"])
def test_word_tokenizes_exactly_as_sacremoses(language: str) -> None:
    """The character sets built once answer as sacremoses' own tests do: the same tokens on words ending in a
    period before lowercase, uppercase, digits and non-Latin letters (where its prefix rules look)."""
    from sacremoses import MosesTokenizer

    stock = MosesTokenizer(lang=language)
    for text in [*PERIOD_CASES, *TEXTS]:
        assert WordTokenizer(language=language).tokenize(text) == stock.tokenize(text, escape=False), text


@pytest.mark.parametrize("language", ["en", "zh"])
def test_word_character_tests_answer_as_sacremoses(language: str) -> None:
    """Both character-class tests, on letters, lowercase letters, CJK (zh adds to the letters) and others."""
    from sacremoses import MosesTokenizer

    stock, ours = MosesTokenizer(lang=language), WordTokenizer(language=language)._moses
    samples = ["", "a", "A", "ß", "ǅ", "ª", "1", "é", "aB", "ab", "中", "中文", "a中", ".", "x.", "Ωω", "-"]
    for text in samples:
        assert ours.islower(text) == stock.islower(text), text
        assert ours.isanyalpha(text) == stock.isanyalpha(text), text


def test_word_tokenizer_pickles() -> None:
    """A tokenizer can go to another process (a worker pool) and tokenizes there as here."""
    tokenizer = WordTokenizer(lowercase=True)
    assert pickle.loads(pickle.dumps(tokenizer)).tokenize(PERIOD_CASES[0]) == tokenizer.tokenize(PERIOD_CASES[0])


# ---- subwords

@pytest.mark.parametrize("text", ["the cat sat on the mat", "a dog on a flat log", "cats sat", "mat"])
def test_subword_round_trip(subword: SubwordTokenizer, text: str) -> None:
    tokens = subword.tokenize(text)
    assert tokens and subword.detokenize(tokens) == text


def test_subword_learns_pieces_longer_than_characters(subword: SubwordTokenizer) -> None:
    tokens = [token for text in CORPUS for token in subword.tokenize(text)]
    assert any(len(token.lstrip("\u2581")) > 1 for token in tokens)
    assert len(tokens) < sum(len(text) for text in CORPUS)


def test_subword_keeps_unknown_characters_as_their_own_pieces(subword: SubwordTokenizer) -> None:
    """Characters never seen in training come out as single-character pieces, and the text survives."""
    text = "the zebra ж sat"
    tokens = subword.tokenize(text)
    assert "ж" in tokens and "z" in tokens
    assert subword.detokenize(tokens) == text


def test_subword_lowercase() -> None:
    tokenizer = SubwordTokenizer.train(CORPUS, vocab_size=30, lowercase=True)
    assert tokenizer.tokenize("The CAT Sat") == tokenizer.tokenize("the cat sat")
    assert tokenizer.detokenize(tokenizer.tokenize("The CAT")) == "the cat"


# ---- saving and rebuilding

@pytest.mark.parametrize("tokenizer", [CharTokenizer(), CharTokenizer(lowercase=True), WordTokenizer(),
                                       WordTokenizer(lowercase=True, split_punctuation=False, language="fr")],
                         ids=["char", "char-lower", "word", "word-plain-fr"])
def test_char_and_word_from_dict_identity(tokenizer: Tokenizer) -> None:
    again = rebuilt(tokenizer)
    assert type(again) is type(tokenizer)
    assert again.to_dict() == tokenizer.to_dict()
    for text in ["L'Homme, A & b!", *TEXTS]:
        assert again.tokenize(text) == tokenizer.tokenize(text)


def test_subword_from_dict_identity(subword: SubwordTokenizer) -> None:
    again = rebuilt(subword)
    assert isinstance(again, SubwordTokenizer)
    assert again.to_dict() == subword.to_dict()
    for text in [*CORPUS[:6], "the zebra ж sat"]:
        assert again.tokenize(text) == subword.tokenize(text)
        assert again.detokenize(again.tokenize(text)) == text
    lowercase = SubwordTokenizer.train(CORPUS, vocab_size=30, lowercase=True)
    assert rebuilt(lowercase).tokenize("The CAT") == lowercase.tokenize("the cat")


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(DataError, match=r"^unknown tokenizer kind 'bpe'$"):
        tokenizer_from_dict({"kind": "bpe"})
    with pytest.raises(DataError, match=r"^unknown tokenizer kind None$"):
        tokenizer_from_dict({})


def test_build_tokenizer_follows_the_config() -> None:
    char = build_tokenizer(TokenizerConfig(kind="char", lowercase=True), [])
    assert isinstance(char, CharTokenizer) and char.lowercase
    word = build_tokenizer(TokenizerConfig(kind="word", split_punctuation=False, language="de"), [])
    assert isinstance(word, WordTokenizer) and word.to_dict()["language"] == "de"
    assert word.tokenize("a, b") == ["a,", "b"]
    sub = build_tokenizer(TokenizerConfig(kind="subword", subword_vocab_size=30), CORPUS)
    assert isinstance(sub, SubwordTokenizer)
    assert sub.tokenize("a cat") == SubwordTokenizer.train(CORPUS, vocab_size=30).tokenize("a cat")
