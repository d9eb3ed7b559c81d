from __future__ import annotations

import math
import os
import pickle

import pytest
import torch

from seq2seq.checkpoint import load_checkpoint, save_checkpoint
from seq2seq.errors import CheckpointError, ConfigError
from seq2seq.training.loss import token_losses
from seq2seq.training.optim import Schedule, build_optimizer


def payload(value: float) -> dict:
    return {
        "model": {"w": torch.full((3,), value)},
        "progress": {"step": int(value)},
        "config": {"a": "b"},
    }


def test_round_trip_and_atomic_replace(tmp_path):
    path = tmp_path / "ckpt" / "last.pt"
    save_checkpoint(payload(1.0), path)
    save_checkpoint(payload(2.0), path)
    loaded = load_checkpoint(path)
    assert loaded["model"]["w"].tolist() == [2.0, 2.0, 2.0] and loaded["progress"]["step"] == 2
    assert os.listdir(path.parent) == ["last.pt"]  # no temp file left behind


def test_truncated_checkpoint_is_a_clear_error_and_previous_survives(tmp_path):
    good, bad = tmp_path / "best.pt", tmp_path / "last.pt"
    save_checkpoint(payload(1.0), good)
    save_checkpoint(payload(2.0), bad)
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(bad)
    assert load_checkpoint(good)["model"]["w"][0] == 1.0


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_pickle_that_would_execute_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "evil": Exploit()}, path)
    with pytest.raises(
        CheckpointError,
        match="holds objects other than tensors and plain containers.*so it is not loaded",
    ):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"model": Exploit()}))
    with pytest.raises(CheckpointError):
        load_checkpoint(plain)
    assert not (tmp_path / "PWNED").exists()


def test_noam_schedule_values():
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, name="adam", lr=1e-3, betas=[0.9, 0.98], weight_decay=0.0)
    sched = Schedule(opt, kind="noam", lr=1e-3, warmup_steps=100, factor=0.5, patience=1, min_lr=0)
    values = {}
    for step in (1, 50, 100, 400):
        sched.step(step)
        values[step] = sched.lr
    assert values[1] == pytest.approx(1e-5)
    assert values[50] == pytest.approx(5e-4)
    assert values[100] == pytest.approx(1e-3)  # the peak is lr itself
    assert values[400] == pytest.approx(1e-3 * math.sqrt(100 / 400))


def test_cosine_schedule_warms_up_then_decays_to_min_lr_at_decay_steps():
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, name="adam", lr=1e-3, betas=[0.9, 0.98], weight_decay=0.0)
    sched = Schedule(
        opt,
        kind="cosine",
        lr=1e-3,
        warmup_steps=100,
        factor=0.5,
        patience=1,
        min_lr=1e-5,
        decay_steps=1100,
    )
    values = {}
    for step in (50, 100, 600, 1100, 5000):
        sched.step(step)
        values[step] = sched.lr
    assert values[50] == pytest.approx(5e-4) and values[100] == pytest.approx(1e-3)
    assert values[600] == pytest.approx(1e-5 + (1e-3 - 1e-5) / 2)  # half way: cos = 0
    assert values[1100] == pytest.approx(1e-5) and values[5000] == pytest.approx(1e-5)
    with pytest.raises(ConfigError, match="optim.decay_steps must be set above"):
        Schedule(
            opt,
            kind="cosine",
            lr=1e-3,
            warmup_steps=100,
            factor=0.5,
            patience=1,
            min_lr=0,
            decay_steps=100,
        )


def test_plateau_schedule_halves_after_patience():
    opt = build_optimizer(
        torch.nn.Linear(2, 2), name="adamw", lr=1e-3, betas=[0.9, 0.98], weight_decay=0.01
    )
    sched = Schedule(
        opt, kind="plateau", lr=1e-3, warmup_steps=1, factor=0.5, patience=1, min_lr=1e-4
    )
    for bleu in (10.0, 12.0, 11.0):
        sched.validated(bleu)
        sched.step(1)
    assert sched.lr == pytest.approx(1e-3)  # one bad validation: within patience
    sched.validated(11.5)
    sched.step(1)
    assert sched.lr == pytest.approx(5e-4)
    for _ in range(10):
        sched.validated(0.0)
        sched.step(1)
    assert sched.lr == pytest.approx(1e-4)  # floored at min_lr
    restored = Schedule(
        opt, kind="plateau", lr=1e-3, warmup_steps=1, factor=0.5, patience=1, min_lr=1e-4
    )
    restored.load_state_dict(sched.state_dict())
    restored.step(1)
    assert restored.lr == pytest.approx(1e-4)


def test_bad_optimizer_values():
    with pytest.raises(ConfigError, match="optim.lr must be positive, got 0"):
        build_optimizer(torch.nn.Linear(2, 2), name="adam", lr=0, betas=[0.9, 0.98], weight_decay=0)
    with pytest.raises(ConfigError, match="valid: adam, adamw"):
        build_optimizer(torch.nn.Linear(2, 2), name="sgd", lr=1, betas=[0.9, 0.98], weight_decay=0)


def test_loss_ignores_padding_and_smooths():
    logits = torch.tensor([[[2.0, 0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0]]])
    target = torch.tensor([[4, 0]])  # second position is PAD
    smoothed, nll = token_losses(logits, target, label_smoothing=0.1)
    log_probs = torch.log_softmax(logits[0, 0], -1)
    assert nll.item() == pytest.approx(-log_probs[4].item())
    expected = 0.9 * -log_probs[4].item() + 0.1 * -log_probs.mean().item()
    assert smoothed.item() == pytest.approx(expected, rel=1e-5)
