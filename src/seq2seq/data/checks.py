"""Loud checks where data would otherwise be lost, or a result be degenerate, without anyone being told."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from seq2seq.data.vocab import SPECIALS, Vocab
from seq2seq.errors import DataError

if TYPE_CHECKING:
    from seq2seq.data.examples import TokenPair

logger = logging.getLogger(__name__)

MOST_FILTERED = 0.5
"""The share of the training pairs that length filtering may drop before training refuses to start."""


def check_length_filtering(token_pairs: Sequence[TokenPair], dropped: int, limits: tuple[int, int],
                           truncate_src: bool) -> None:
    """Warn about pairs dropped for their length; raise DataError, with the counts and the fixes, when more than
    MOST_FILTERED of them (or all) would go.

    Args:
        token_pairs: the training pairs' (source, target) tokens, before filtering.
        dropped: how many of them the filter dropped.
        limits: data.max_src_length and data.max_tgt_length (0 = no limit).
        truncate_src: whether sources are cut to max_src_length (so that none is dropped for its length).
    """
    total = len(token_pairs)
    if not dropped:
        return
    if dropped <= MOST_FILTERED * total:
        logger.warning("filtered %d of %d training pairs longer than %d source / %d target tokens",
                       dropped, total, *limits)
        return
    head = ("no training pairs left after length filtering" if dropped == total
            else f"length filtering would drop {dropped} of {total} training pairs")
    long_src = 0 if truncate_src else _longer(token_pairs, 0, limits[0])
    raise DataError(f"{head} ({long_src} sources over data.max_src_length={limits[0]} tokens, "
                    f"{_longer(token_pairs, 1, limits[1])} targets over data.max_tgt_length={limits[1]}); fixes: "
                    "data.truncate_src=true, a larger data.max_src_length / data.max_tgt_length, or word or subword "
                    "tokens (--tokens word)")


def _longer(token_pairs: Sequence[TokenPair], side: int, limit: int) -> int:
    return sum(len(pair[side]) > limit for pair in token_pairs) if limit else 0


def check_vocabulary(vocab: Vocab, setting: str, min_freq: int) -> None:
    """Raise DataError when a vocabulary built from training data holds nothing but the special tokens (every
    token would be read as <unk>); setting names its config section, e.g. `data.src`."""
    if len(vocab) <= len(SPECIALS):
        raise DataError(f"the {setting} vocabulary holds only the special tokens {' '.join(SPECIALS)}: every token "
                        f"would be <unk>; lower {setting}.min_freq (now {min_freq}) or give more training data")


def check_split(train_size: int, dev_size: int, unit: str = "pairs") -> None:
    """Warn when the dev set is larger than the training set (--train and --dev swapped?)."""
    if dev_size > train_size:
        logger.warning("WARNING: the dev set (%d %s) is larger than the training set (%d %s): were --train and "
                       "--dev swapped?", dev_size, unit, train_size, unit)


def check_outputs_vary(sources: Sequence[str], outputs: Sequence[str]) -> bool:
    """Warn (and return False) when different inputs all got the same output: a model that ignores its input
    (undertrained, or trained on too few pairs)."""
    if len(set(sources)) < 2 or len(set(outputs)) != 1:
        return True
    logger.warning("WARNING: every output is the same text (%r) for %d different inputs: the model ignores its "
                   "input (trained too little, or on too few pairs?)", outputs[0][:80], len(set(sources)))
    return False
