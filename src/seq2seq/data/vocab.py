"""Vocabulary: special tokens, building from counts, and mapping tokens to ids and back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from typing import Any

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
LABEL_OFFSET = len(SPECIALS)
"""Class k of a classifier is id k + LABEL_OFFSET of its label vocabulary (a Vocab, whose first ids are specials)."""


class TokenIds(dict[str, int]):
    """token -> id, where looking up an unknown token gives the id of <unk>."""

    def __missing__(self, token: str) -> int:
        return UNK_ID


class Vocab:
    """Token <-> id table; ids 0-3 are always <pad> <unk> <s> </s>."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.itos = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        self.stoi = TokenIds((token, index) for index, token in enumerate(self.itos))

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]], min_freq: int = 1, max_size: int = 0) -> Vocab:
        """Most frequent tokens first (ties alphabetical), keeping those seen at least min_freq times."""
        return cls.from_counts(Counter(chain.from_iterable(sequences)), min_freq, max_size)

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], min_freq: int = 1, max_size: int = 0) -> Vocab:
        """`build` from each token's count (e.g. summed over parts of a corpus counted apart)."""
        ranked = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
        return cls(ranked[:max_size] if max_size else ranked)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str], add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Token ids; unknown tokens map to <unk>."""
        ids = list(map(self.stoi.__getitem__, tokens))  # a loop in C: encoding a corpus is millions of lookups
        return ([BOS_ID] if add_bos else []) + ids + ([EOS_ID] if add_eos else [])

    def encode_extended(self, tokens: Sequence[str]) -> tuple[list[int], list[str]]:
        """Source ids for a copying model: each distinct unknown token gets its own id len(self) + k, in order of
        appearance; returns the ids and those unknown tokens (the sentence's extension of the vocabulary)."""
        extension: dict[str, int] = {}
        ids = [self.stoi[token] if token in self.stoi else extension.setdefault(token, len(self) + len(extension))
               for token in tokens]
        return ids, list(extension)

    def encode_target(self, tokens: Sequence[str], extension: Sequence[str]) -> list[int]:
        """Target ids <s> ... </s> for a copying model: unknown tokens that the source holds get their extended id,
        other unknown tokens <unk>."""
        extended = {token: len(self) + k for k, token in enumerate(extension)}
        ids = [self.stoi[token] if token in self.stoi else extended.get(token, UNK_ID) for token in tokens]
        return [BOS_ID, *ids, EOS_ID]

    def decode(self, ids: Iterable[int], extension: Sequence[str] = ()) -> list[str]:
        """Tokens up to the first </s>, without <pad> and <s>; ids past the vocabulary index the extension."""
        tokens = []
        for index in ids:
            if index == EOS_ID:
                break
            if index not in (PAD_ID, BOS_ID):
                tokens.append(self.itos[index] if index < len(self.itos) else extension[index - len(self.itos)])
        return tokens

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": self.itos}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Vocab:
        return cls(values["tokens"])
