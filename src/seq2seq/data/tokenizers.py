"""Tokenizers for one side of the data: characters, words (Moses rules) or subwords (sentencepiece)."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterable
from functools import partial
from typing import Any, Protocol

import sentencepiece

from seq2seq.config import TokenizerConfig
from seq2seq.errors import DataError

SURROGATES = re.compile("[\ud800-\udfff]")


class Tokenizer(Protocol):
    """Splits text into tokens and joins tokens back into readable text."""

    def tokenize(self, text: str) -> list[str]: ...

    def detokenize(self, tokens: list[str]) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


class CharTokenizer:
    """Every character is a token (spaces included)."""

    def __init__(self, lowercase: bool = False) -> None:
        self.lowercase = lowercase

    def tokenize(self, text: str) -> list[str]:
        return list(text.lower() if self.lowercase else text)

    def detokenize(self, tokens: list[str]) -> str:
        return "".join(tokens)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "char", "lowercase": self.lowercase}


class WordTokenizer:
    """Words and punctuation marks (Moses rules), or plain whitespace-separated words."""

    def __init__(self, lowercase: bool = False, split_punctuation: bool = True, language: str = "en") -> None:
        self.lowercase = lowercase
        self.split_punctuation = split_punctuation
        self.language = language
        if split_punctuation:  # sacremoses compiles its rules on import: only pay for it when they are used
            from sacremoses import MosesDetokenizer, MosesTokenizer

            self._moses = MosesTokenizer(lang=language)
            self._demoses = MosesDetokenizer(lang=language)
            _build_character_sets_once(self._moses)

    def tokenize(self, text: str) -> list[str]:
        text = text.lower() if self.lowercase else text
        if self.split_punctuation:
            return self._moses.tokenize(text, escape=False)
        return text.split()

    def detokenize(self, tokens: list[str]) -> str:
        return self._demoses.detokenize(tokens) if self.split_punctuation else " ".join(tokens)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "word", "lowercase": self.lowercase, "split_punctuation": self.split_punctuation,
                "language": self.language}


def _build_character_sets_once(moses: Any) -> None:
    """Make a MosesTokenizer's two character-class tests (is every character lowercase, is any a letter) use sets
    built once, with the same answers: sacremoses builds sets of its Unicode classes on every call, on every word
    that ends in a period, which made long texts such as package descriptions three times slower to tokenize."""
    moses.islower = frozenset(moses.IsLower).issuperset
    moses.isanyalpha = partial(_any_of, frozenset(moses.IsAlpha))


def _any_of(characters: frozenset[str], text: str) -> bool:
    """Whether any character of text is one of the characters."""
    return not characters.isdisjoint(text)


class SubwordTokenizer:
    """Sentencepiece unigram pieces; the trained model travels inside the checkpoint as base64."""

    def __init__(self, model_proto: bytes, lowercase: bool = False) -> None:
        self.lowercase = lowercase
        self._proto = model_proto
        self._processor = sentencepiece.SentencePieceProcessor(model_proto=model_proto)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, lowercase: bool = False) -> SubwordTokenizer:
        """Learn a sentencepiece model on the training texts."""
        buffer = io.BytesIO()
        texts = [text.lower() if lowercase else text for text in texts]
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=buffer, vocab_size=vocab_size, hard_vocab_limit=False,
            character_coverage=1.0, bos_id=-1, eos_id=-1, unk_surface="<unk>", minloglevel=2)
        return cls(buffer.getvalue(), lowercase)

    def tokenize(self, text: str) -> list[str]:
        text = well_formed(text.lower() if self.lowercase else text)
        return self._processor.encode(text, out_type=str)

    def detokenize(self, tokens: list[str]) -> str:
        return self._processor.decode_pieces(tokens)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "subword", "lowercase": self.lowercase, "model": base64.b64encode(self._proto).decode()}


def well_formed(text: str) -> str:
    """text with each surrogate code point (which no UTF-8 text holds, but a Python string may) replaced by U+FFFD."""
    return SURROGATES.sub("\ufffd", text)


def build_tokenizer(config: TokenizerConfig, texts: Iterable[str]) -> Tokenizer:
    """Make the tokenizer a config asks for, training it on texts where it learns (subword)."""
    if config.kind == "char":
        return CharTokenizer(config.lowercase)
    if config.kind == "word":
        return WordTokenizer(config.lowercase, config.split_punctuation, config.language)
    return SubwordTokenizer.train(texts, config.subword_vocab_size, config.lowercase)


def tokenizer_from_dict(values: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer saved with `to_dict`."""
    kind = values.get("kind")
    if kind == "char":
        return CharTokenizer(values["lowercase"])
    if kind == "word":
        return WordTokenizer(values["lowercase"], values["split_punctuation"], values["language"])
    if kind == "subword":
        return SubwordTokenizer(base64.b64decode(values["model"]), values["lowercase"])
    raise DataError(f"unknown tokenizer kind {kind!r}")
