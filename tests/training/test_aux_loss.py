"""train_step adds a model output's ``aux_loss`` (given the per-token NLL) to the objective; the
loss it reports stays the ordinary one. A toy model carries the term: no variant is named."""

from __future__ import annotations

import types

import pytest
import torch
from torch import nn

from seq2seq.data.batching import Batch
from seq2seq.models.base import Seq2Seq, Seq2SeqOutput
from seq2seq.runtime import DistInfo
from seq2seq.training.loop import train_step
from seq2seq.training.loss import output_losses

V, D = 9, 4


class ToyWithAuxLoss(Seq2Seq):
    """features = an embedding of tgt_in; aux_loss(nll) = scale * (nll * weight).sum(), where
    ``scale`` is a parameter (so its gradient shows the term reached the objective)."""

    def __init__(self, with_aux: bool) -> None:
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.generator = nn.Linear(D, V)
        self.scale = nn.Parameter(torch.tensor(2.0))
        self.with_aux = with_aux
        self.seen: list[torch.Tensor] = []

    @property
    def output_layer(self) -> nn.Linear:
        return self.generator

    def forward(self, src, src_mask, tgt_in, tgt_mask, *, need_attn=False, features_only=False):
        out = Seq2SeqOutput(None, None, self.embed(tgt_in))
        if self.with_aux:

            def aux_loss(nll: torch.Tensor) -> torch.Tensor:
                self.seen.append(nll)
                return self.scale * (nll * tgt_mask).sum()

            out.aux_loss = aux_loss
        return out


def parts_for(model: Seq2Seq):
    return types.SimpleNamespace(
        model=model,
        train_model=model,
        runtime=types.SimpleNamespace(device=torch.device("cpu"), amp_dtype=None, dist=DistInfo()),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.0),  # gradients only
        scaler=torch.amp.GradScaler("cpu", enabled=False),
    )


def batch() -> Batch:
    gen = torch.Generator().manual_seed(0)
    tgt_in = torch.randint(4, V, (3, 5), generator=gen)
    tgt_in[:, 0] = 2
    tgt_mask = torch.arange(5)[None, :] < torch.tensor([5, 3, 2])[:, None]
    tgt_in = tgt_in.masked_fill(~tgt_mask, 0)
    tgt_out = torch.randint(4, V, (3, 5), generator=gen).masked_fill(~tgt_mask, 0)
    src = torch.randint(4, V, (3, 4), generator=gen)
    return Batch(
        src=src,
        src_mask=torch.ones(3, 4, dtype=torch.bool),
        src_lengths=torch.full((3,), 4),
        tgt_in=tgt_in,
        tgt_out=tgt_out,
        tgt_mask=tgt_mask,
        indices=torch.arange(3),
    )


@pytest.mark.parametrize("with_aux", [False, True])
def test_train_step_adds_the_aux_loss_of_the_per_token_nll(with_aux, monkeypatch):
    torch.manual_seed(0)
    model = ToyWithAuxLoss(with_aux)
    parts = parts_for(model)
    grads = {}
    real_step = parts.optimizer.step

    def keep_grads(*args, **kwargs):  # read the gradients before zero_grad
        grads.update({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        return real_step(*args, **kwargs)

    monkeypatch.setattr(parts.optimizer, "step", keep_grads)
    b = batch()
    loss, tokens, grad_norm = train_step(parts, [b], label_smoothing=0.1, clip_grad_norm=0.0)
    assert tokens == 10 and grad_norm is not None
    features = model.embed(b.tgt_in)
    plain, _, nll = output_losses(
        features, model.generator, b.tgt_out, label_smoothing=0.1, per_token=True
    )
    assert loss == pytest.approx(
        float(plain.detach()) / tokens, rel=1e-6
    )  # the reported loss: no aux
    if not with_aux:
        assert "scale" not in grads
        return
    (seen,) = model.seen  # called once, with the plain per-token NLL (no smoothing)
    torch.testing.assert_close(seen, nll)
    assert not seen.requires_grad
    # d objective / d scale = sum(nll) / tokens: the term was added, then divided by tokens
    torch.testing.assert_close(grads["scale"], nll.sum() / tokens)
