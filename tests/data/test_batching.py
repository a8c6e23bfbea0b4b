"""Inference batches: every input once, similar lengths together."""

from __future__ import annotations

from seq2seq.data.batching import length_batches


def test_length_batches_hold_every_input_once_shortest_first() -> None:
    lengths = [5, 1, 9, 3, 3, 7, 2]
    batches = length_batches(lengths, 3)
    assert [len(batch) for batch in batches] == [3, 3, 1]
    assert sorted(index for batch in batches for index in batch) == list(range(len(lengths)))
    flat = [lengths[index] for batch in batches for index in batch]
    assert flat == sorted(lengths) and length_batches([], 4) == []
