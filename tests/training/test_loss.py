"""The fused output-layer loss equals logits + cross entropy, in value and in every gradient."""

from __future__ import annotations

import pytest
import torch

from seq2seq.training import loss as loss_module
from seq2seq.training.loss import output_losses, token_losses

V, D = 11, 6


def make_inputs(bias: bool, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    layer = torch.nn.Linear(D, V, bias=bias)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(V, D, generator=g))
        if bias:
            layer.bias.copy_(torch.randn(V, generator=g))
    features = torch.randn(3, 5, D, generator=g, requires_grad=True)
    target = torch.randint(1, V, (3, 5), generator=g)
    target[0, 3:] = 0  # padding
    target[2, 1:] = 0
    return features, layer, target


def grads(loss, features, layer):
    params = [features, layer.weight] + ([layer.bias] if layer.bias is not None else [])
    return torch.autograd.grad(loss, params)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("chunk_elements", [4 * V, 1 << 22])  # 4 tokens a chunk, or one chunk
def test_equals_logits_then_cross_entropy(monkeypatch, bias, label_smoothing, chunk_elements):
    monkeypatch.setattr(loss_module, "CHUNK_ELEMENTS", chunk_elements)
    features, layer, target = make_inputs(bias)
    expected_loss, expected_nll = token_losses(
        layer(features), target, label_smoothing=label_smoothing
    )
    expected_grads = grads(expected_loss, features, layer)

    got_loss, got_nll = output_losses(features, layer, target, label_smoothing=label_smoothing)
    torch.testing.assert_close(got_loss, expected_loss, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(got_nll, expected_nll, atol=1e-5, rtol=1e-6)
    assert not got_nll.requires_grad
    for got, expected in zip(grads(got_loss, features, layer), expected_grads, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_padding_positions_get_no_gradient_and_scaled_loss_scales_gradients():
    features, layer, target = make_inputs(bias=True)
    loss, _ = output_losses(features, layer, target, label_smoothing=0.1)
    (grad_features,) = torch.autograd.grad(loss * 3.0, [features])
    assert grad_features[target == 0].abs().max() == 0
    (unscaled,) = torch.autograd.grad(
        output_losses(features, layer, target, label_smoothing=0.1)[0], [features]
    )
    torch.testing.assert_close(grad_features, 3.0 * unscaled)


def test_known_value():
    """One token, logits (2, 0, 0, 0, 1) from an identity layer: nll = lse - 1."""
    layer = torch.nn.Linear(5, 5, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(5))
    features = torch.tensor([[[2.0, 0.0, 0.0, 0.0, 1.0]]])
    loss, nll = output_losses(features, layer, torch.tensor([[4]]), label_smoothing=0.1)
    lse = torch.logsumexp(features[0, 0], 0).item()
    assert nll.item() == pytest.approx(lse - 1.0)
    assert loss.item() == pytest.approx(0.9 * (lse - 1.0) + 0.1 * (lse - 0.6), rel=1e-6)


def test_bf16_autocast_is_close_and_keeps_parameter_dtypes():
    features, layer, target = make_inputs(bias=True, seed=1)
    expected, _ = token_losses(layer(features), target, label_smoothing=0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, _ = output_losses(features, layer, target, label_smoothing=0.1)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=2e-2, atol=0.0)
    g_features, g_weight, g_bias = grads(got, features, layer)
    assert (g_features.dtype, g_weight.dtype, g_bias.dtype) == (torch.float32,) * 3


def test_bad_label_smoothing():
    features, layer, target = make_inputs(bias=False)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\), got 1.5"):
        output_losses(features, layer, target, label_smoothing=1.5)


@pytest.mark.parametrize("chunk_elements", [4 * V, 1 << 22])
def test_per_token_nll(monkeypatch, chunk_elements):
    """per_token=True adds each position's plain NLL (what a model's aux_loss takes): equal to
    cross entropy per position, 0 on padding, detached; loss and gradients unchanged."""
    monkeypatch.setattr(loss_module, "CHUNK_ELEMENTS", chunk_elements)
    features, layer, target = make_inputs(bias=True)
    loss, nll, per_token = output_losses(
        features, layer, target, label_smoothing=0.1, per_token=True
    )
    expected = torch.nn.functional.cross_entropy(
        layer(features).transpose(1, 2), target, ignore_index=0, reduction="none"
    )  # (3, 5), 0 on padding
    assert per_token.shape == target.shape and per_token.dtype == torch.float32
    assert not per_token.requires_grad and (per_token[target == 0] == 0).all()
    torch.testing.assert_close(per_token, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(per_token.sum(), nll)
    plain_loss, plain_nll = output_losses(features, layer, target, label_smoothing=0.1)
    assert torch.equal(loss, plain_loss) and torch.equal(nll, plain_nll)


def test_positions_from_the_cpu_batch_give_the_same_losses_and_gradients():
    """The training step passes the real positions it took from the CPU batch (on a GPU,
    indexing by the padding mask is a host sync): same losses, per-token NLLs and gradients."""
    from seq2seq.training.loss import real_positions

    features, layer, target = make_inputs(bias=True)
    positions = real_positions(target)
    assert positions.tolist() == (target.reshape(-1) != 0).nonzero().squeeze(1).tolist()
    given = output_losses(
        features, layer, target, label_smoothing=0.1, per_token=True, positions=positions
    )
    grads_given = torch.autograd.grad(given[0], [features, layer.weight])
    derived = output_losses(features, layer, target, label_smoothing=0.1, per_token=True)
    grads_derived = torch.autograd.grad(derived[0], [features, layer.weight])
    for a, b in zip([*given, *grads_given], [*derived, *grads_derived], strict=True):
        assert torch.equal(a, b)
