"""How a classifier cuts a long text (data.truncation); torch-free: the ONNX runtime reads texts with it too."""

from __future__ import annotations

from seq2seq.config import DataConfig


def cut_text(tokens: list[str], data: DataConfig) -> list[str]:
    """A text's tokens as a classifier reads them: at most data.max_src_length (0 = all), the first ones
    (data.truncation head), or the first half of them, rounded up, and the last half (head_tail; 192 -> 96 + 96,
    5 -> 3 + 2): the end of a text often says what it is ("This package contains the development files")."""
    limit = data.max_src_length
    if not limit or len(tokens) <= limit:
        return tokens
    if data.truncation == "head_tail":
        head = (limit + 1) // 2
        return tokens[:head] + tokens[len(tokens) - (limit - head):]
    return tokens[:limit]
