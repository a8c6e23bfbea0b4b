"""RNN step kernels: the LSTM / GRU gate arithmetic of one time step, with part of the input product precomputed."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

Cell = nn.LSTMCell | nn.GRUCell


class StepWeights(NamedTuple):
    """A cell's weights for one step, transposed: for the inputs not in the precomputed gates (F, G), None when all
    are; for the state (H, G); and a GRU's state bias (G,), None for an LSTM (its biases are in the gates)."""

    rest: Tensor | None
    hidden: Tensor
    hidden_bias: Tensor | None


def input_gates(cell: Cell, inputs: Tensor) -> Tensor:
    """Gate pre-activations (..., G) from inputs (..., E), the first E of the cell's input columns.

    The biases that do not multiply the state are added here: both of an LSTM, the input one of a GRU (its state
    bias sits inside the reset gate's product). Computed for all time steps at once, outside the step loop.
    """
    bias = cell.bias_ih + cell.bias_hh if isinstance(cell, nn.LSTMCell) else cell.bias_ih
    return nn.functional.linear(inputs, cell.weight_ih[:, :inputs.size(-1)], bias)


def step_weights(cell: Cell, split: int) -> StepWeights:
    """The weights a step multiplies: the cell's input columns from `split` on, and its state weights.

    Under autocast they are cast once here, not once per step.
    """
    rest = cell.weight_ih[:, split:].t() if cell.weight_ih.size(1) > split else None  # (F, G)
    hidden = cell.weight_hh.t()  # (H, G)
    if torch.is_autocast_enabled(hidden.device.type):
        dtype = torch.get_autocast_dtype(hidden.device.type)
        rest, hidden = None if rest is None else rest.to(dtype), hidden.to(dtype)
    return StepWeights(rest, hidden, None if isinstance(cell, nn.LSTMCell) else cell.bias_hh)


def precomputed_step(gates: Tensor, rest: Tensor | None, state: tuple[Tensor, ...],
                     weights: StepWeights) -> tuple[Tensor, ...]:
    """One step of a cell from its precomputed gates (B, G), the rest of its inputs (B, F) and its state parts (B, H):
    (h, c) of an LSTM, (h,) of a GRU -> the new parts."""
    if weights.rest is not None:
        assert rest is not None
        gates = torch.addmm(gates, rest.to(weights.rest.dtype), weights.rest)
    if len(state) == 2:
        return lstm_step(gates, (state[0], state[1]), weights.hidden)
    assert weights.hidden_bias is not None
    return (gru_step(gates, state[0], weights.hidden, weights.hidden_bias),)


def lstm_step(gates: Tensor, state: tuple[Tensor, Tensor], hidden_weight: Tensor) -> tuple[Tensor, Tensor]:
    """nn.LSTMCell's update from the input's gate pre-activations (B, 4H), biases included, and the transposed state
    weights (H, 4H): (h, c) -> (h, c)."""
    hidden, cell = state
    gates = torch.addmm(gates, hidden.to(hidden_weight.dtype), hidden_weight)
    input_gate, forget_gate, candidate, output_gate = gates.chunk(4, dim=1)  # each (B, H)
    cell = torch.sigmoid(forget_gate) * cell + torch.sigmoid(input_gate) * torch.tanh(candidate)
    return torch.sigmoid(output_gate) * torch.tanh(cell), cell


def gru_step(gates: Tensor, hidden: Tensor, hidden_weight: Tensor, hidden_bias: Tensor) -> Tensor:
    """nn.GRUCell's update from the input's gate pre-activations (B, 3H), input bias included, the transposed state
    weights (H, 3H) and the state bias (3H,): h -> h."""
    recurrent = torch.addmm(hidden_bias, hidden.to(hidden_weight.dtype), hidden_weight)  # (B, 3H)
    size = hidden.size(1)
    reset, update = torch.sigmoid(gates[:, :2 * size] + recurrent[:, :2 * size]).chunk(2, dim=1)
    candidate = torch.tanh(gates[:, 2 * size:] + reset * recurrent[:, 2 * size:])
    return candidate + update * (hidden - candidate)


def cell_step(cell: Cell, inputs: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """One step of an nn.LSTMCell / nn.GRUCell on inputs (B, E) and state parts (B, H) -> the new parts."""
    result = cell(inputs, (state[0], state[1]) if len(state) == 2 else state[0])
    return result if isinstance(result, tuple) else (result,)


def rnn_step(rnn: nn.LSTM | nn.GRU, inputs: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
    """One time step of a stacked, one-directional nn.LSTM / nn.GRU, layer by layer through its cell functions.

    The same computation as the module on a sequence of length 1, without the set-up that its oneDNN path pays on
    every call (on CPU, one token at batch 1 runs about 5x faster). Inputs (B, E) and state parts (L, B, H): (h, c)
    of an LSTM, (h,) of a GRU -> output (B, H) and the new parts; dropout between layers as the module applies it.
    """
    if rnn.bidirectional or rnn.proj_size or not rnn.bias:
        raise ValueError("rnn_step runs only one-directional RNNs with biases and without projections")
    cell = torch.lstm_cell if isinstance(rnn, nn.LSTM) else torch.gru_cell
    layers: list[tuple[Tensor, ...]] = []
    for layer in range(rnn.num_layers):
        weights = (getattr(rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        previous = tuple(part[layer] for part in state)
        result = cell(inputs, previous if len(previous) == 2 else previous[0], *weights)
        layers.append(result if isinstance(result, tuple) else (result,))
        inputs = layers[-1][0]
        if rnn.training and layer + 1 < rnn.num_layers:
            inputs = nn.functional.dropout(inputs, rnn.dropout, training=True)
    return inputs, tuple(torch.stack(parts) for parts in zip(*layers, strict=True))
