"""decoding.stream: greedy and sampling one step at a time give, as they go, the tokens of the whole decode."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seq2seq import api
from seq2seq.data.examples import Example
from seq2seq.data.pairs import collate
from seq2seq.decoding.search import DEFAULT_PROCESSORS, greedy, sample, stream

MODEL = Path(__file__).parents[1] / "fixtures" / "v1" / "attention.safetensors"


@pytest.mark.parametrize("draw", [False, True])
def test_streamed_tokens_are_the_decoded_ones(draw: bool) -> None:
    translator = api.load_translator(MODEL, device="cpu")
    texts = ["a b c", "j i h g f", "d e"]
    batch = collate([Example(translator.vocabs[0].encode(t.split()), [0]) for t in texts])
    steps = stream(translator.model, batch.src, batch.src_lengths, 0, DEFAULT_PROCESSORS, 2,
                   torch.Generator().manual_seed(3), draw=draw)
    streamed = []
    while True:
        try:
            streamed.append(next(steps))
        except StopIteration as finished:
            decoded = finished.value
            break
    assert torch.equal(torch.stack(streamed, dim=1), decoded.tokens)
    if draw:
        whole = sample(translator.model, batch.src, batch.src_lengths, 0, DEFAULT_PROCESSORS, 2,
                       torch.Generator().manual_seed(3))
    else:
        whole = greedy(translator.model, batch.src, batch.src_lengths, 0)
    assert torch.equal(whole.tokens, decoded.tokens) and torch.equal(whole.scores, decoded.scores)
