"""Pairs of texts as token ids (`Example`): tokenizing and encoding them with the vocabularies, without torch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from seq2seq.data.lines import Pair
from seq2seq.data.tokenizers import Tokenizer
from seq2seq.data.vocab import PAD_ID, Vocab

if TYPE_CHECKING:
    from torch import Tensor


class Example(NamedTuple):
    """Token ids of one pair; tgt holds <s> ... </s>. A speech example's src is its frames (S, F), floats."""

    src: list[int] | Tensor
    tgt: list[int]


TokenPair = tuple[list[str], list[str]]


def tokenize_pairs(pairs: Sequence[Pair], tokenizers: tuple[Tokenizer, Tokenizer]) -> list[TokenPair]:
    """The source and target tokens of each pair."""
    return [(tokenizers[0].tokenize(pair.src), tokenizers[1].tokenize(pair.tgt)) for pair in pairs]


def encode_pairs(pairs: Sequence[Pair], tokenizers: tuple[Tokenizer, Tokenizer], vocabs: tuple[Vocab, Vocab],
                 max_lengths: tuple[int, int] = (0, 0), copy: bool = False, truncate_src: int = 0
                 ) -> tuple[list[Example], int]:
    """Tokenize and encode pairs: `encode_tokens` of `tokenize_pairs`."""
    return encode_tokens(tokenize_pairs(pairs, tokenizers), vocabs, max_lengths, copy, truncate_src)


def encode_tokens(token_pairs: Sequence[TokenPair], vocabs: tuple[Vocab, Vocab], max_lengths: tuple[int, int] = (0, 0),
                  copy: bool = False, truncate_src: int = 0) -> tuple[list[Example], int]:
    """Token ids for each pair; pairs longer than max_lengths (tokens, 0 = no limit) are dropped and counted.

    Sources are first cut to truncate_src tokens (0 = never). With copy (a pointer-generator model, one vocabulary
    for both sides) unknown source tokens get extended ids (`Vocab.encode_extended`), and target tokens copied from
    them the same ids.
    """
    examples, dropped = [], 0
    for src_tokens, tgt_tokens in token_pairs:
        src_tokens = src_tokens[:truncate_src] if truncate_src else src_tokens
        if copy:
            src, extension = vocabs[0].encode_extended(src_tokens)
            tgt = vocabs[1].encode_target(tgt_tokens, extension)
        else:
            src, tgt = vocabs[0].encode(src_tokens), vocabs[1].encode(tgt_tokens, add_bos=True, add_eos=True)
        if (max_lengths[0] and len(src) > max_lengths[0]) or (max_lengths[1] and len(tgt) - 2 > max_lengths[1]):
            dropped += 1
            continue
        examples.append(Example(src or [PAD_ID], tgt))
    return examples, dropped
