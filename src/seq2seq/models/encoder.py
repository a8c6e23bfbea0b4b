"""RNN encoder: embeddings (or given vectors), then a (bidirectional, stacked) LSTM or GRU over packed sequences."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2seq.data.vocab import PAD_ID
from seq2seq.utils.device import rnn_autocast

RNN_TYPES: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU}


class Encoder(nn.Module):
    """Reads the source: token ids through embeddings, or with vocab_size 0 vectors of embedding_size (speech
    frames); the directions of a bidirectional RNN share hidden_size between them."""

    def __init__(self, vocab_size: int, embedding_size: int, hidden_size: int, num_layers: int, rnn: str,
                 bidirectional: bool, dropout: float) -> None:
        super().__init__()
        self.directions = 2 if bidirectional else 1
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD_ID) if vocab_size else None
        self.dropout = nn.Dropout(dropout)
        self.rnn = RNN_TYPES[rnn](embedding_size, hidden_size // self.directions, num_layers, batch_first=True,
                                  bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)

    def forward(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Encode (B, S) ids, or (B, S, E) vectors without embeddings; returns outputs (B, S, H) and the final state,
        each part (L, B, H)."""
        embedded = self.embed(src)  # (B, S, E)
        packed = pack_padded_sequence(embedded.float(), src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        with rnn_autocast(src.device):
            packed_outputs, final = self.rnn(packed)
        outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=src.size(1))
        parts = final if isinstance(final, tuple) else (final,)
        return outputs, tuple(self._merge_directions(part) for part in parts)

    def embed(self, src: Tensor) -> Tensor:
        """The RNN's inputs (B, S, E): (B, S) ids through the embeddings, or given vectors; dropout applied."""
        return self.dropout(self.embedding(src) if self.embedding is not None else src)

    def _merge_directions(self, state: Tensor) -> Tensor:
        """(L * dirs, B, H / dirs) -> (L, B, H): the directions of each layer side by side."""
        layers = state.size(0) // self.directions
        state = state.view(layers, self.directions, state.size(1), state.size(2))
        return torch.cat(state.unbind(1), dim=-1)
