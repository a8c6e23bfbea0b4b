"""A language model's text without torch: the stream of ids it is read and scored on, cut into rows; shared by
`tasks.lm` (PyTorch) and the ONNX runtime, so that the two agree."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from seq2seq.data.tokenizers import Tokenizer
from seq2seq.data.vocab import BOS_ID, PAD_ID, Vocab
from seq2seq.errors import DataError

Array = NDArray[Any]


def count_characters(entries: Iterable[str]) -> int:
    """Characters of the text: those of each entry plus one for the newline (or delimiter) that ends it."""
    return sum(len(entry) + 1 for entry in entries)


def encode_stream(token_lists: Iterable[Sequence[str]], vocab: Vocab) -> list[int]:
    """One stream of ids: `<s> tokens </s>` for each entry's tokens, in order; unknown tokens map to <unk>."""
    return [index for tokens in token_lists for index in vocab.encode(tokens, add_bos=True, add_eos=True)]


def scored_stream(entries: Sequence[str], tokenizer: Tokenizer, vocab: Vocab) -> list[int]:
    """The stream an evaluation reads: the entries tokenized and encoded; no entries is a DataError."""
    if not entries:
        raise DataError("no text to evaluate")
    return encode_stream([tokenizer.tokenize(entry) for entry in entries], vocab)


def stream_rows(stream: Sequence[int], parts: int, window: int) -> Array:
    """The stream cut into at most `parts` contiguous rows (B, L + 1), int64, padded with <pad> at the end.

    Row b is read as inputs [:-1] and targets [1:], so consecutive rows share one token; there are fewer rows when
    the stream is too short to give each `window` targets.
    """
    parts = max(1, min(parts, (len(stream) - 1) // window))
    size = math.ceil((len(stream) - 1) / parts)
    rows = [stream[start:start + size + 1] for start in range(0, len(stream) - 1, size)]
    ids = np.full((len(rows), size + 1), PAD_ID, dtype=np.int64)
    for index, row in enumerate(rows):
        ids[index, :len(row)] = row
    return ids


def window_reads(length: int, window: int, carried: bool) -> list[tuple[int, int, int]]:
    """How a row of length inputs is read to score it: (begin, start, end) reads inputs [begin, end) and scores the
    targets [start, end). A model that carries its state reads consecutive windows (begin = start), continuing
    from the state the last one left; one that does not (a Transformer) reads windows of `window` inputs that
    overlap by half and scores each one's second half, so every target past the first half-window is predicted
    from at least half a window of the text before it."""
    stride = window if carried else max(1, window // 2)
    return [(start if carried else max(0, start + stride - window), start, min(start + stride, length))
            for start in range(0, length, stride)]


def stream_targets(rows: Array) -> Array:
    """The targets (B, L) of stream rows, <pad> where not counted: padding, and `<s>` (it always follows `</s>`)."""
    targets = rows[:, 1:]
    return np.where(targets == BOS_ID, PAD_ID, targets)
