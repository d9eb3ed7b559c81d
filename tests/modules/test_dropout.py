"""Dropout from random bits: nn.Dropout's distribution and scaling, seeded, identity in eval."""

from __future__ import annotations

import pytest
import torch

from seq2seq.modules.dropout import Dropout


def test_keeps_one_minus_p_and_scales_the_kept():
    drop = Dropout(0.3).train()
    x = torch.full((1000, 1000), 2.0)
    y = drop(x)
    kept = y != 0
    assert kept.float().mean().item() == pytest.approx(0.7, abs=0.002)  # 1e6 draws: sd 0.0005
    # every 16-bit lane of a random int64 draw is uniform (the top one has 15 random bits)
    lane_keep = kept.view(-1, 4).float().mean(dim=0)  # 250k draws each: sd 0.0009
    torch.testing.assert_close(lane_keep, torch.full((4,), 0.7), rtol=0, atol=0.005)
    assert drop.cpu_drop_probability == pytest.approx(0.3, abs=2**-16)
    expected = 2.0 / (1.0 - drop.cpu_drop_probability)
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], expected))
    assert y.mean().item() == pytest.approx(2.0, rel=0.005)  # unbiased


@pytest.mark.parametrize("p", [0.1, 0.5, 0.99])
def test_odd_sizes_views_and_bf16(p):
    drop = Dropout(p).train()
    x = torch.randn(7, 9, 3)[:, ::2]  # 63 elements: not a multiple of 4, and not contiguous
    y = drop(x)
    assert y.shape == x.shape
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / (1.0 - drop.cpu_drop_probability))
    half = drop(torch.ones(4000, dtype=torch.bfloat16))
    assert half.dtype == torch.bfloat16
    assert (half != 0).float().mean().item() == pytest.approx(1.0 - p, abs=0.03)


def test_gradient_is_the_same_mask_and_scale():
    drop = Dropout(0.5).train()
    x = torch.randn(64, 32, requires_grad=True)
    y = drop(x)
    (grad,) = torch.autograd.grad(y.sum(), [x])
    torch.testing.assert_close(grad, (y != 0).float() * 2.0)


def test_seeded_runs_repeat_and_eval_is_identity():
    drop = Dropout(0.1).train()
    x = torch.randn(50, 40)
    torch.manual_seed(7)
    first = drop(x)
    torch.manual_seed(7)
    assert torch.equal(first, drop(x))
    assert drop.eval()(x) is x
    assert Dropout(0.0).train()(x) is x


def test_bad_probability():
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.0"):
        Dropout(1.0)
