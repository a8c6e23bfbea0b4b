"""RNN step kernels: each equals the torch module it re-implements on the same weights, and the comparison is sharp
enough to catch gates read in the wrong order."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from seq2seq.config import ModelConfig
from seq2seq.models import kernels
from seq2seq.models.decoder import hidden_of, rnn_state
from seq2seq.models.seq2seq import Seq2Seq
from tests.models.test_model import padded_batch

EMBEDDING, FED, HIDDEN, BATCH = 8, 6, 16, 4
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


def random_cell(rnn: str, input_size: int) -> kernels.Cell:
    torch.manual_seed(0)
    return nn.LSTMCell(input_size, HIDDEN) if rnn == "lstm" else nn.GRUCell(input_size, HIDDEN)


def random_state(rnn: str, *leading: int) -> tuple[Tensor, ...]:
    """State parts (..., B, H): (h, c) of an LSTM, (h,) of a GRU."""
    return tuple(torch.randn(*leading, BATCH, HIDDEN) for _ in range(2 if rnn == "lstm" else 1))


def cell_reference(cell: kernels.Cell, inputs: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """What nn.LSTMCell / nn.GRUCell itself gives, as state parts."""
    result = cell(inputs, state if len(state) == 2 else state[0])
    return result if isinstance(result, tuple) else (result,)


def precomputed_run(cell: kernels.Cell, inputs: Tensor, state: tuple[Tensor, ...], split: int) -> tuple[Tensor, ...]:
    """The kernels' step: the first `split` input columns through `input_gates`, the rest per step."""
    gates = kernels.input_gates(cell, inputs[:, :split])
    rest = inputs[:, split:] if split < inputs.size(1) else None
    return kernels.precomputed_step(gates, rest, state, kernels.step_weights(cell, split))


def swap_gates(cell: kernels.Cell) -> kernels.Cell:
    """A copy with its first two gates exchanged (an LSTM's input and forget gates, a GRU's reset and update)."""
    swapped = copy.deepcopy(cell)
    with torch.no_grad():
        for parameter in swapped.parameters():
            first, second = parameter[:HIDDEN].clone(), parameter[HIDDEN:2 * HIDDEN].clone()
            parameter[:HIDDEN], parameter[HIDDEN:2 * HIDDEN] = second, first
    return swapped


# ---- one cell, its gates split into a precomputed part and a per-step part
@pytest.mark.parametrize("split", [EMBEDDING, EMBEDDING + FED], ids=["fed-per-step", "all-precomputed"])
@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_precomputed_step_equals_the_cell(rnn: str, split: int) -> None:
    cell = random_cell(rnn, EMBEDDING + FED)
    inputs, state = torch.randn(BATCH, EMBEDDING + FED), random_state(rnn)
    with torch.no_grad():
        stepped, expected = precomputed_run(cell, inputs, state, split), cell_reference(cell, inputs, state)
    assert len(stepped) == len(expected)
    for part, expected_part in zip(stepped, expected, strict=True):
        torch.testing.assert_close(part, expected_part, **TOLERANCE)


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_the_comparison_catches_swapped_gates(rnn: str) -> None:
    """Negative control: the kernel on a cell whose gates are exchanged is far from the cell."""
    cell = random_cell(rnn, EMBEDDING + FED)
    inputs, state = torch.randn(BATCH, EMBEDDING + FED), random_state(rnn)
    with torch.no_grad():
        wrong, expected = precomputed_run(swap_gates(cell), inputs, state, EMBEDDING), cell_reference(cell, inputs,
                                                                                                     state)
    assert not torch.allclose(wrong[0], expected[0], **TOLERANCE)


def test_lstm_and_gru_steps_equal_their_cells() -> None:
    """The bare kernels, fed the input product with its biases as nn.LSTMCell / nn.GRUCell would compute it."""
    inputs = torch.randn(BATCH, EMBEDDING)
    lstm, gru = random_cell("lstm", EMBEDDING), random_cell("gru", EMBEDDING)
    (hidden, cell_state), (gru_hidden,) = random_state("lstm"), random_state("gru")
    with torch.no_grad():
        gates = nn.functional.linear(inputs, lstm.weight_ih, lstm.bias_ih + lstm.bias_hh)
        stepped = kernels.lstm_step(gates, (hidden, cell_state), lstm.weight_hh.t())
        expected = lstm(inputs, (hidden, cell_state))
        gru_gates = nn.functional.linear(inputs, gru.weight_ih, gru.bias_ih)
        gru_stepped = kernels.gru_step(gru_gates, gru_hidden, gru.weight_hh.t(), gru.bias_hh)
        gru_expected = gru(inputs, gru_hidden)
    torch.testing.assert_close(stepped, expected, **TOLERANCE)
    torch.testing.assert_close(gru_stepped, gru_expected, **TOLERANCE)


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_step_weights_are_cast_once_under_autocast(rnn: str) -> None:
    cell = random_cell(rnn, EMBEDDING + FED)
    inputs, state = torch.randn(BATCH, EMBEDDING + FED), random_state(rnn)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        weights = kernels.step_weights(cell, EMBEDDING)
        stepped = precomputed_run(cell, inputs, state, EMBEDDING)
    assert weights.rest is not None and weights.rest.dtype == weights.hidden.dtype == torch.bfloat16
    with torch.no_grad():
        expected = cell_reference(cell, inputs, state)
    torch.testing.assert_close(stepped[0].float(), expected[0], rtol=0.05, atol=0.05)


@pytest.mark.parametrize("input_feeding", [True, False])
@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_attention_decoder_first_layer_equals_its_cell(rnn: str, input_feeding: bool) -> None:
    """The decoder's first layer, its gates split into the embeddings' product and the per-step products, gives what
    its nn.LSTMCell / nn.GRUCell gives on the whole input."""
    torch.manual_seed(0)
    config = ModelConfig(arch="attention", rnn=rnn, num_layers=2, hidden_size=16, embedding_size=8, dropout=0.0,
                         input_feeding=input_feeding)
    model = Seq2Seq(config, 12, 14).eval()
    memory = model.encode(*padded_batch())
    initial = model.init_state(memory)
    hidden = tuple(torch.randn_like(part) for part in hidden_of(initial))
    state = rnn_state(hidden, {name: (torch.randn(4, 16) if name == "feed" else initial[name], initial.axes[name])
                               for name in ("feed", "attention")})
    tokens = torch.tensor([4, 7, 9, 13])
    with torch.no_grad():
        _, stepped = model.step(tokens, state, memory)
        decoder = model.decoder
        embedded = decoder.embedding(tokens)
        cell_input = torch.cat([embedded, state["feed"]], dim=-1) if input_feeding else embedded
        expected = cell_reference(decoder.cells[0], cell_input, tuple(part[0] for part in hidden))
    for part, expected_part in zip(hidden_of(stepped), expected, strict=True):
        torch.testing.assert_close(part[0], expected_part, **TOLERANCE)


# ---- a stacked nn.LSTM / nn.GRU, one time step through its cells
def random_rnn(rnn: str, dropout: float = 0.0) -> nn.LSTM | nn.GRU:
    torch.manual_seed(0)
    return (nn.LSTM if rnn == "lstm" else nn.GRU)(EMBEDDING, HIDDEN, 2, batch_first=True, dropout=dropout)


def rnn_reference(rnn: nn.LSTM | nn.GRU, inputs: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """The module on a sequence of length 1: output (B, H), then the state parts (L, B, H)."""
    outputs, final = rnn(inputs.unsqueeze(1), state if len(state) == 2 else state[0])
    return outputs.squeeze(1), *(final if isinstance(final, tuple) else (final,))


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train-dropout"])
@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_rnn_step_equals_a_length_one_run(rnn: str, training: bool) -> None:
    """Two layers; in training, the same dropout mask between them as the module draws from the same seed."""
    module = random_rnn(rnn, dropout=0.5).train(training)
    inputs, state = torch.randn(BATCH, EMBEDDING), random_state(rnn, 2)
    with torch.no_grad():
        torch.manual_seed(3)
        output, parts = kernels.rnn_step(module, inputs, state)
        torch.manual_seed(3)
        expected = rnn_reference(module, inputs, state)
    for got, want in zip((output, *parts), expected, strict=True):
        torch.testing.assert_close(got, want, **TOLERANCE)


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_rnn_step_comparison_catches_mixed_up_layers(rnn: str) -> None:
    """Negative controls: layer states exchanged, or one layer's gates exchanged, are far from the module."""
    module = random_rnn(rnn)
    inputs, state = torch.randn(BATCH, EMBEDDING), random_state(rnn, 2)
    swapped = copy.deepcopy(module)
    with torch.no_grad():
        for name in ("weight_hh_l1", "bias_ih_l1"):
            parameter = getattr(swapped, name)
            parameter[:2 * HIDDEN] = parameter[:2 * HIDDEN].roll(HIDDEN, dims=0)
        expected = rnn_reference(module, inputs, state)[0]
        layers_exchanged = kernels.rnn_step(module, inputs, tuple(part.flip(0) for part in state))[0]
        gates_exchanged = kernels.rnn_step(swapped, inputs, state)[0]
    assert not torch.allclose(layers_exchanged, expected, **TOLERANCE)
    assert not torch.allclose(gates_exchanged, expected, **TOLERANCE)


def test_rnn_step_rejects_a_bidirectional_rnn() -> None:
    with pytest.raises(ValueError, match="one-directional"):
        kernels.rnn_step(nn.GRU(EMBEDDING, HIDDEN, bidirectional=True), torch.randn(BATCH, EMBEDDING),
                         (torch.zeros(2, BATCH, HIDDEN),))
