"""Attention: each score type against its formula computed by hand, masking, and context = weights @ values."""

from __future__ import annotations

import pytest
import torch

from seq2seq.models import attention as attention_module
from seq2seq.models.attention import Attention

KINDS = ["dot", "general", "bahdanau"]
SIZE = 6


def inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """query (3, H), encoder outputs (3, 5, H) and a mask (3, 5) of rows with 5, 2 and 1 real positions."""
    generator = torch.Generator().manual_seed(seed)
    query = torch.randn(3, SIZE, generator=generator)
    outputs = torch.randn(3, 5, SIZE, generator=generator)
    mask = torch.arange(5) < torch.tensor([[5], [2], [1]])
    return query, outputs, mask


def attention(kind: str, coverage: bool = False) -> Attention:
    torch.manual_seed(0)
    return Attention(kind, SIZE, coverage).eval()


def scores_by_hand(module: Attention, query: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """(B, S) scores written out from the papers' formulas, one position at a time."""
    scores = torch.empty(outputs.shape[:2])
    for b in range(outputs.size(0)):
        for s in range(outputs.size(1)):
            h_t, h_s = query[b], outputs[b, s]
            if module.kind == "dot":  # Luong: h_t . h_s
                scores[b, s] = h_t @ h_s
            elif module.kind == "general":  # Luong: h_t^T W h_s
                scores[b, s] = h_t @ module.key_projection.weight @ h_s
            else:  # Bahdanau: v^T tanh(W_q h_t + b + W_k h_s)
                hidden = module.query_projection(h_t) + module.key_projection.weight @ h_s
                scores[b, s] = module.score_vector.weight[0] @ torch.tanh(hidden)
    return scores


@pytest.mark.parametrize("kind", KINDS)
def test_weights_are_the_softmax_of_the_score_over_real_positions(kind: str) -> None:
    module = attention(kind)
    query, outputs, mask = inputs()
    with torch.no_grad():
        _, weights = module(query, module.prepare_keys(outputs), outputs, mask)
        expected = torch.softmax(scores_by_hand(module, query, outputs).masked_fill(~mask, float("-inf")), dim=-1)
    torch.testing.assert_close(weights, expected)


@pytest.mark.parametrize("kind", KINDS)
def test_weights_sum_to_one_over_real_positions_and_are_zero_at_padding(kind: str) -> None:
    module = attention(kind)
    query, outputs, mask = inputs()
    with torch.no_grad():
        _, weights = module(query, module.prepare_keys(outputs), outputs, mask)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3))
    assert torch.all(weights[~mask] == 0.0)
    assert torch.all(weights[mask] > 0.0)
    assert weights[2, 0].item() == pytest.approx(1.0)  # a single real position gets all the attention


@pytest.mark.parametrize("kind", KINDS)
def test_context_is_the_weighted_sum_of_the_values(kind: str) -> None:
    module = attention(kind)
    query, outputs, mask = inputs()
    values = torch.randn(3, 5, SIZE, generator=torch.Generator().manual_seed(7))  # other than the keys' source
    with torch.no_grad():
        context, weights = module(query, module.prepare_keys(outputs), values, mask)
    torch.testing.assert_close(context, torch.bmm(weights.unsqueeze(1), values).squeeze(1))
    torch.testing.assert_close(context[2], values[2, 0])  # one real position: its value, whatever the padding holds


@pytest.mark.parametrize("kind", KINDS)
def test_padding_contents_do_not_matter(kind: str) -> None:
    module = attention(kind)
    query, outputs, mask = inputs()
    noisy = outputs.masked_fill(~mask.unsqueeze(2), 1e3)  # (B, S, H)
    with torch.no_grad():
        context, weights = module(query, module.prepare_keys(outputs), outputs, mask)
        noisy_context, noisy_weights = module(query, module.prepare_keys(noisy), noisy, mask)
    torch.testing.assert_close(noisy_weights, weights)
    torch.testing.assert_close(noisy_context, context)


@pytest.mark.parametrize("kind", KINDS)
def test_rows_do_not_affect_each_other(kind: str) -> None:
    module = attention(kind)
    query, outputs, mask = inputs()
    keys = module.prepare_keys(outputs)
    with torch.no_grad():
        context, weights = module(query, keys, outputs, mask)
        for row in range(3):
            one, alone = module(query[row:row + 1], keys[row:row + 1], outputs[row:row + 1], mask[row:row + 1])
            torch.testing.assert_close(one[0], context[row])
            torch.testing.assert_close(alone[0], weights[row])


def test_only_general_and_bahdanau_have_parameters() -> None:
    """dot is parameter-free; general keeps one H x H matrix; Bahdanau two matrices, a bias and a vector."""
    assert sum(p.numel() for p in attention("dot").parameters()) == 0
    assert sum(p.numel() for p in attention("general").parameters()) == SIZE * SIZE
    assert sum(p.numel() for p in attention("bahdanau").parameters()) == 2 * SIZE * SIZE + 2 * SIZE
    _, outputs, _ = inputs()
    assert attention("dot").prepare_keys(outputs) is outputs


@pytest.mark.parametrize("kind", KINDS)
def test_zero_coverage_scores_like_no_coverage(kind: str) -> None:
    module = attention(kind, coverage=True)
    query, outputs, mask = inputs()
    keys = module.prepare_keys(outputs)
    with torch.no_grad():
        plain = module(query, keys, outputs, mask)
        covered = module(query, keys, outputs, mask, torch.zeros(3, 5))
    torch.testing.assert_close(covered, plain)


@pytest.mark.parametrize("kind", ["dot", "general"])
def test_luong_coverage_adds_a_learned_multiple_of_the_coverage(kind: str) -> None:
    module = attention(kind, coverage=True)
    query, outputs, mask = inputs()
    coverage = torch.rand(3, 5, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        _, weights = module(query, module.prepare_keys(outputs), outputs, mask, coverage)
        scores = scores_by_hand(module, query, outputs) + module.coverage_projection.weight[0, 0] * coverage
    torch.testing.assert_close(weights, torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1))


def test_bahdanau_coverage_enters_inside_the_tanh() -> None:
    module = attention("bahdanau", coverage=True)
    query, outputs, mask = inputs()
    coverage = torch.rand(3, 5, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        _, weights = module(query, module.prepare_keys(outputs), outputs, mask, coverage)
        hidden = (module.query_projection(query).unsqueeze(1) + outputs @ module.key_projection.weight.T
                  + coverage.unsqueeze(2) * module.coverage_projection.weight[:, 0])  # (B, S, H)
        scores = torch.tanh(hidden) @ module.score_vector.weight[0]  # (B, S)
    expected = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    torch.testing.assert_close(weights, expected)
    with torch.no_grad():
        _, uncovered = module(query, module.prepare_keys(outputs), outputs, mask)
    assert not torch.allclose(weights, uncovered)  # the coverage really moved the attention


@pytest.mark.parametrize("kind", KINDS)
def test_matrix_product_form_for_large_products_equals_the_elementwise_form(kind: str,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    module, (query, outputs, mask) = attention(kind), inputs()
    keys = module.prepare_keys(outputs)
    elementwise = module(query, keys, outputs, mask)
    monkeypatch.setattr(attention_module, "LARGE_PRODUCT", 0)  # every product counts as large
    product = module(query, keys, outputs, mask)
    for small, large in zip(elementwise, product, strict=True):
        torch.testing.assert_close(large, small, rtol=1e-5, atol=1e-6)
