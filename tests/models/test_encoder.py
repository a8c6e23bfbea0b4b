"""Encoder: packed sequences make padding invisible; bidirectional outputs and final states side by side."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from seq2seq.data.vocab import PAD_ID
from seq2seq.models.encoder import Encoder

HIDDEN, LAYERS = 8, 2
SETTINGS = [("lstm", True), ("lstm", False), ("gru", True), ("gru", False)]


def encoder(rnn: str, bidirectional: bool) -> Encoder:
    torch.manual_seed(0)
    return Encoder(vocab_size=11, embedding_size=5, hidden_size=HIDDEN, num_layers=LAYERS, rnn=rnn,
                   bidirectional=bidirectional, dropout=0.3).eval()


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """(4, 6) ids with lengths 6, 2, 4, 1 (unsorted, as batches come), padded with <pad>."""
    lengths = torch.tensor([6, 2, 4, 1])
    src = torch.randint(4, 11, (4, 6), generator=torch.Generator().manual_seed(1))
    src[torch.arange(6) >= lengths.unsqueeze(1)] = PAD_ID
    return src, lengths


@pytest.mark.parametrize(("rnn", "bidirectional"), SETTINGS)
def test_shapes(rnn: str, bidirectional: bool) -> None:
    """outputs (B, S, H); one (L, B, H) tensor per part of the state: (h, c) for an LSTM, h for a GRU."""
    model = encoder(rnn, bidirectional)
    with torch.no_grad():
        outputs, final = model(*padded_batch())
    assert outputs.shape == (4, 6, HIDDEN)
    assert len(final) == (2 if rnn == "lstm" else 1)
    assert all(part.shape == (LAYERS, 4, HIDDEN) for part in final)
    assert model.rnn.hidden_size == (HIDDEN // 2 if bidirectional else HIDDEN)  # the directions share H


@pytest.mark.parametrize(("rnn", "bidirectional"), SETTINGS)
def test_padded_row_encodes_like_the_row_alone(rnn: str, bidirectional: bool) -> None:
    model = encoder(rnn, bidirectional)
    src, lengths = padded_batch()
    with torch.no_grad():
        outputs, final = model(src, lengths)
        for row, length in enumerate(lengths.tolist()):
            alone_outputs, alone_final = model(src[row:row + 1, :length], lengths[row:row + 1])
            torch.testing.assert_close(outputs[row, :length], alone_outputs[0])
            for part, alone_part in zip(final, alone_final, strict=True):
                torch.testing.assert_close(part[:, row], alone_part[:, 0])
    assert torch.all(outputs[torch.arange(6) >= lengths.unsqueeze(1)] == 0.0)  # padding positions are zeros


@pytest.mark.parametrize(("rnn", "bidirectional"), SETTINGS)
def test_ids_at_padding_positions_do_not_matter(rnn: str, bidirectional: bool) -> None:
    model = encoder(rnn, bidirectional)
    src, lengths = padded_batch()
    other = src.masked_fill(torch.arange(6) >= lengths.unsqueeze(1), 7)  # a real token where <pad> was
    with torch.no_grad():
        outputs, final = model(src, lengths)
        other_outputs, other_final = model(other, lengths)
    torch.testing.assert_close(other_outputs, outputs)
    for part, other_part in zip(final, other_final, strict=True):
        torch.testing.assert_close(other_part, part)


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_bidirectional_final_state_puts_each_layers_directions_side_by_side(rnn: str) -> None:
    """Layer l of the final state is [forward_l ; backward_l], each half H/2, from the RNN's (L * 2, B, H/2)."""
    model = encoder(rnn, bidirectional=True)
    src, lengths = padded_batch()
    with torch.no_grad():
        outputs, final = model(src, lengths)
        packed = pack_padded_sequence(model.embedding(src), lengths, batch_first=True, enforce_sorted=False)
        _, raw = model.rnn(packed)
    raw_parts = raw if isinstance(raw, tuple) else (raw,)
    half = HIDDEN // 2
    for part, raw_part in zip(final, raw_parts, strict=True):
        for layer in range(LAYERS):
            torch.testing.assert_close(part[layer, :, :half], raw_part[2 * layer])  # forward direction
            torch.testing.assert_close(part[layer, :, half:], raw_part[2 * layer + 1])  # backward direction
    top = final[0][-1]  # (B, H): the top layer's h
    for row, length in enumerate(lengths.tolist()):
        torch.testing.assert_close(top[row, :half], outputs[row, length - 1, :half])  # forward ends at the last token
        torch.testing.assert_close(top[row, half:], outputs[row, 0, half:])  # backward ends at the first


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_unidirectional_final_state_is_the_output_at_the_last_real_token(rnn: str) -> None:
    model = encoder(rnn, bidirectional=False)
    src, lengths = padded_batch()
    with torch.no_grad():
        outputs, final = model(src, lengths)
    for row, length in enumerate(lengths.tolist()):
        torch.testing.assert_close(final[0][-1, row], outputs[row, length - 1])


def test_dropout_acts_in_training_only() -> None:
    model = encoder("lstm", bidirectional=True)
    src, lengths = padded_batch()
    with torch.no_grad():
        first, _ = model(src, lengths)
        again, _ = model(src, lengths)
        model.train()
        torch.manual_seed(1)
        dropped, _ = model(src, lengths)
    assert torch.equal(first, again)
    assert not torch.allclose(first, dropped)
