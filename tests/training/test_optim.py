"""FusedAdam: the same updates and state_dict layout as torch.optim.Adam, without importing torch._dynamo."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from typing import Any

import pytest
import torch
from torch import nn

from seq2seq.training.optim import FusedAdam


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(8, 5), nn.Linear(5, 3))


def _loss(model: nn.Module, step: int) -> torch.Tensor:
    tokens = torch.tensor([[1, 2, 3], [4, 5, 6]]) + step % 2
    return model(tokens).square().mean()


def _train(model: nn.Module, optimizer: FusedAdam | torch.optim.Adam, steps: Iterable[int]) -> None:
    for step in steps:
        model.zero_grad(set_to_none=True)
        _loss(model, step).backward()
        if step == 1:
            model[1].bias.grad = None  # a parameter without a gradient is left alone
        optimizer.step()


def test_updates_equal_torch_adam() -> None:
    ours, reference = _model(), _model()
    _train(ours, FusedAdam(ours.parameters(), lr=0.01), range(5))
    _train(reference, torch.optim.Adam(reference.parameters(), lr=0.01), range(5))
    for mine, theirs in zip(ours.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-7)
    assert not torch.equal(ours[1].weight, _model()[1].weight)


def _groups(model: nn.Module) -> list[dict[str, Any]]:
    """Two groups with their own hyperparameters: the embedding's, and the linear layer's."""
    return [{"params": model[0].parameters(), "lr": 0.01},
            {"params": model[1].parameters(), "lr": 0.002, "betas": (0.8, 0.99), "eps": 1e-6}]


def test_each_parameter_group_steps_with_its_own_settings_as_in_torch_adam() -> None:
    ours, reference = _model(), _model()
    fused, torch_adam = FusedAdam(_groups(ours), lr=0.5), torch.optim.Adam(_groups(reference), lr=0.5, fused=False)
    _train(ours, fused, range(5))
    _train(reference, torch_adam, range(5))
    for mine, theirs in zip(ours.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-7)
    ours_state, torch_state = fused.state_dict(), torch_adam.state_dict()
    assert ours_state["param_groups"] == [{**group, "fused": True} for group in torch_state["param_groups"]]
    assert ours_state["state"].keys() == torch_state["state"].keys()


def test_state_dict_moves_between_torch_adam_and_ours() -> None:
    reference = _model()
    torch_adam = torch.optim.Adam(reference.parameters(), lr=0.01)
    _train(reference, torch_adam, range(3))
    ours = _model()
    ours.load_state_dict(reference.state_dict())
    fused = FusedAdam(ours.parameters(), lr=0.5)
    fused.load_state_dict(torch_adam.state_dict())
    assert fused.param_groups[0]["lr"] == 0.01
    _train(ours, fused, range(3, 6))
    _train(reference, torch_adam, range(3, 6))
    for mine, theirs in zip(ours.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-7)
    back = torch.optim.Adam(_model().parameters(), lr=0.5)
    back.load_state_dict(fused.state_dict())
    for index, state in back.state_dict()["state"].items():
        torch.testing.assert_close(state["exp_avg_sq"], torch_adam.state_dict()["state"][index]["exp_avg_sq"])


@pytest.mark.slow
def test_a_training_step_does_not_import_dynamo() -> None:
    program = ("import sys, torch; from seq2seq.training.optim import FusedAdam\n"
               "from seq2seq.training.gradients import clip_gradients\n"
               "model = torch.nn.Linear(3, 2); optimizer = FusedAdam(model.parameters(), lr=0.1)\n"
               "model(torch.ones(4, 3)).sum().backward(); clip_gradients(model.parameters(), 1.0); optimizer.step()\n"
               "assert 'torch._dynamo' not in sys.modules")
    subprocess.run([sys.executable, "-c", program], check=True)


def test_grad_scaler_drives_it_as_it_drives_torch_adam() -> None:
    """fp16 training unscales the gradients through param_groups and skips steps with infinite gradients."""
    ours, reference = _model(), _model()
    fused = FusedAdam(ours.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    for step in range(3):
        ours.zero_grad(set_to_none=True)
        scaler.scale(_loss(ours, step)).backward()
        if step == 1:
            ours[1].weight.grad[0, 0] = float("inf")  # this step is skipped
        scaler.step(fused)
        scaler.update()
    _train(reference, torch.optim.Adam(reference.parameters(), lr=0.01), [0, 2])
    for mine, theirs in zip(ours.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)


def test_settings_it_does_not_have_are_refused() -> None:
    with pytest.raises(ValueError, match="FusedAdam has no weight_decay"):
        FusedAdam([{"params": [torch.nn.Parameter(torch.ones(2))], "weight_decay": 0.1}], lr=0.1)
