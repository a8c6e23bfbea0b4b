"""The fused projection + cross-entropy equals PyTorch's cross_entropy on materialised logits."""

from __future__ import annotations

import pytest
import torch

from seq2seq.models import loss as loss_module
from seq2seq.models.loss import projected_cross_entropy, token_cross_entropy


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_matches_cross_entropy_and_its_gradients(label_smoothing: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loss_module, "CHUNK_ROWS", 7)  # several chunks, the last one partial
    torch.manual_seed(0)
    features = torch.randn(30, 8, requires_grad=True)
    weight = torch.randn(50, 8, requires_grad=True)
    bias = torch.randn(50, requires_grad=True)
    targets = torch.randint(0, 50, (30,))
    expected = torch.nn.functional.cross_entropy(features @ weight.t() + bias, targets, reduction="sum",
                                                 label_smoothing=label_smoothing)
    got = projected_cross_entropy(features, weight, bias, targets, label_smoothing)
    torch.testing.assert_close(got, expected)
    for a, b in zip(torch.autograd.grad(expected, (features, weight, bias)),
                    torch.autograd.grad(got, (features, weight, bias)), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_weighted_rows_match_cross_entropy_gradients() -> None:
    torch.manual_seed(0)
    features = torch.randn(20, 8, requires_grad=True)
    weight, bias = torch.randn(40, 8, requires_grad=True), torch.randn(40, requires_grad=True)
    targets, row_weights = torch.randint(0, 40, (20,)), torch.rand(20) * 3
    logits = features @ weight.t() + bias
    expected = (torch.nn.functional.cross_entropy(logits, targets, reduction="none", label_smoothing=0.1)
                * row_weights).sum()
    got = (token_cross_entropy(features, weight, bias, targets, 0.1) * row_weights).sum()
    for a, b in zip(torch.autograd.grad(expected, (features, weight, bias)),
                    torch.autograd.grad(got, (features, weight, bias)), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_bf16_autocast_stays_close_to_fp32() -> None:
    torch.manual_seed(0)
    features, weight, bias = torch.randn(40, 16), torch.randn(100, 16) * 0.3, torch.zeros(100)
    targets = torch.randint(0, 100, (40,))
    exact = projected_cross_entropy(features, weight, bias, targets)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        approximate = projected_cross_entropy(features, weight, bias, targets)
    assert approximate.dtype == torch.float32
    assert abs(float(approximate) - float(exact)) / float(exact) < 0.02


def test_bf16_autocast_gradients_stay_close_to_fp32() -> None:
    torch.manual_seed(0)
    features, weight, bias = torch.randn(40, 16), torch.randn(100, 16), torch.zeros(100)
    targets = (features @ weight.t()).argmax(dim=1)  # confident and right: target probabilities near 1

    def gradients(autocast: bool) -> tuple[torch.Tensor, ...]:
        leaves = (features.clone().requires_grad_(), weight.clone().requires_grad_())
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = projected_cross_entropy(*leaves, bias, targets, label_smoothing=0.1)
        return torch.autograd.grad(loss, leaves)

    for exact, approximate in zip(gradients(False), gradients(True), strict=True):
        assert float((approximate - exact).norm() / exact.norm()) < 0.03
