"""Dropout from uniform_: nn.Dropout's distribution and scaling, seeded, identity in eval."""

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
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 2.0 / 0.7))
    assert y.mean().item() == pytest.approx(2.0, rel=0.005)  # unbiased


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
