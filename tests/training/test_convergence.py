"""The convergence rule: patience with a minimum gain, best.pt on every gain, the stop's record
in metrics.json (reason, step, epochs, tokens, converged), and the benchmark timing the very
step that training runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from seq2seq.checkpoint import load_checkpoint
from seq2seq.training import loop, train
from seq2seq.training.state import Progress, Stop, StopReason, converged
from tests.conftest import TINY, TINY_RNN, compose_config, needs_multi30k


def feed(
    progress: Progress, bleus: list[float], min_delta: float, losses: list[float] | None = None
) -> list[tuple[bool, int]]:
    """(best.pt saved, bad_validations) after each validation, one step apart; patience on
    BLEU, or on the loss when ``losses`` are given."""
    out = []
    for i, bleu in enumerate(bleus):
        progress.step += 1
        loss = losses[i] if losses else 1.0
        stop_on = "loss" if losses else "bleu"
        improved = progress.validated(bleu, loss, stop_on=stop_on, min_delta=min_delta)
        out.append((improved, progress.bad_validations))
    return out


def test_every_gain_is_best_but_only_a_gain_of_min_delta_resets_patience():
    p = Progress()
    got = feed(p, [10.0, 12.0, 12.05, 11.0, 12.08, 12.09], min_delta=0.1)
    assert got == [(True, 0), (True, 0), (True, 1), (False, 2), (True, 3), (True, 4)]
    assert (p.best_bleu, p.best_step, p.patience_ref) == (12.09, 6, 12.0)


def test_small_gains_that_add_up_to_min_delta_reset_patience():
    p = Progress()
    got = feed(p, [10.0, 10.06, 10.12, 10.13], min_delta=0.1)
    # 10.12 is 0.12 above 10.0, the BLEU that last reset the count: a gain of min_delta
    assert [bad for _, bad in got] == [0, 1, 0, 1]
    assert p.patience_ref == 10.12


def test_patience_on_the_loss_counts_drops_and_best_pt_still_follows_bleu():
    """Greedy BLEU jumps by a point between validations while the loss still falls: with
    stop_on=loss the count resets on every drop of min_delta, best.pt on every BLEU gain."""
    p = Progress()
    bleus = [20.0, 22.0, 21.0, 21.5, 22.5, 22.4]
    losses = [3.0, 2.9, 2.85, 2.849, 2.851, 2.80]
    got = feed(p, bleus, min_delta=0.005, losses=losses)
    assert got == [(True, 0), (True, 0), (False, 0), (False, 1), (True, 2), (False, 0)]
    assert (p.best_bleu, p.best_step, p.patience_ref) == (22.5, 5, 2.80)


def test_without_min_delta_any_gain_resets_and_a_tie_does_not():
    p = Progress()
    assert [bad for _, bad in feed(p, [5.0, 5.0, 5.01, 4.0], min_delta=0.0)] == [0, 1, 0, 1]


@pytest.mark.parametrize(
    ("reason", "patience", "expected"),
    [
        (StopReason.early_stopping, 3, True),
        (StopReason.max_steps, 3, False),  # a cap ended it before the rule did
        (StopReason.max_time, 3, False),
        (StopReason.max_epochs, 3, False),
        (StopReason.diverged, 3, False),
        (StopReason.max_steps, None, None),  # no rule: never meant to converge
    ],
)
def test_converged_says_whether_the_rule_ended_the_run(reason, patience, expected):
    assert converged(Stop(reason, "x"), patience) is expected


def tiny(shared_cache: Path, run_dir: Path, *overrides: str):
    return compose_config(
        *TINY, *TINY_RNN, f"data.cache_dir={shared_cache}", f"run_dir={run_dir}", *overrides
    )


def scripted_validation(monkeypatch, bleus: list[float]) -> list[int]:
    """Validation BLEU follows ``bleus``; returns the steps validated."""
    steps: list[int] = []

    def fake_validate(parts, *, step, **kwargs):
        steps.append(step)
        bleu = bleus[len(steps) - 1]
        return {"val_loss": 5.0, "val_ppl": 148.4, "val_bleu": bleu, "val_chrf": bleu}

    monkeypatch.setattr(loop, "validate", fake_validate)
    return steps


@needs_multi30k
def test_early_stopping_stops_at_the_right_validation_and_keeps_the_best(
    shared_cache, tmp_path, monkeypatch
):
    steps = scripted_validation(monkeypatch, [10.0, 12.0, 12.05, 11.0, 12.08, 30.0, 30.0])
    metrics = train(
        tiny(
            shared_cache,
            tmp_path,
            "trainer.max_steps=100",
            "trainer.val_every=2",
            "trainer.patience=3",
            "trainer.min_delta=0.1",
        )
    )
    # the 5th validation (step 10) is the 3rd in a row without a gain of 0.1 over 12.0
    assert steps == [2, 4, 6, 8, 10]
    assert metrics["stop_reason"] == "early stopping (no BLEU gain of 0.1 in 3 validations)"
    assert metrics["stopped_by"] == "early_stopping" and metrics["converged"] is True
    assert metrics["steps"] == 10 and metrics["best_step"] == 10 and metrics["val_bleu"] == 12.08
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best["progress"]["step"] == 10 and best["progress"]["best_bleu"] == 12.08
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["progress"]["bad_validations"] == 3
    plan = last["progress"]["epoch"]  # whole epochs done, plus the share of the current one
    assert plan <= metrics["epochs"] < plan + 1
    assert metrics["train_tokens"] == last["progress"]["train_tokens"] > 0
    history = [json.loads(x) for x in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [h["val_bleu"] for h in history] == [10.0, 12.0, 12.05, 11.0, 12.08]
    assert all(h["val_time"] >= 0 for h in history)


@needs_multi30k
def test_early_stopping_on_the_validation_loss(shared_cache, tmp_path, monkeypatch):
    losses = iter([5.0, 4.0, 3.99, 3.995, 3.992, 1.0])

    def fake_validate(parts, *, step, **kwargs):
        return {"val_loss": next(losses), "val_ppl": 1.0, "val_bleu": float(step), "val_chrf": 1.0}

    monkeypatch.setattr(loop, "validate", fake_validate)
    metrics = train(
        tiny(
            shared_cache,
            tmp_path,
            "trainer.max_steps=100",
            "trainer.val_every=2",
            "trainer.patience=3",
            "trainer.stop_on=loss",
            "trainer.min_delta=0.02",
        )
    )
    # 3.99, 3.995 and 3.992 are not 0.02 below 4.0: stopped at the 5th validation, BLEU rising
    assert metrics["stop_reason"] == "early stopping (no val loss drop of 0.02 in 3 validations)"
    assert metrics["steps"] == 10 and metrics["best_step"] == 10 and metrics["converged"] is True


@needs_multi30k
def test_a_cap_hit_while_improving_is_marked_not_converged(shared_cache, tmp_path, monkeypatch):
    scripted_validation(monkeypatch, [1.0, 2.0, 3.0])
    metrics = train(
        tiny(
            shared_cache,
            tmp_path,
            "trainer.max_steps=6",
            "trainer.val_every=2",
            "trainer.patience=3",
        )
    )
    assert metrics["stop_reason"] == "max_steps=6" and metrics["converged"] is False
    assert metrics["best_step"] == 6


@needs_multi30k
def test_metrics_record_the_commit_cpu_and_torch_that_trained_the_run(shared_cache, tmp_path):
    metrics = train(tiny(shared_cache, tmp_path, "trainer.patience=null"))
    root = Path(__file__).resolve().parents[2]
    head = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    if head.returncode == 0:
        assert metrics["commit"].removesuffix("+dirty") == head.stdout.strip()
    else:
        assert metrics["commit"] is None
    assert metrics["torch"] == torch.__version__ and metrics["cpu"]
    assert metrics["device"] == "cpu" and metrics["device_name"] == metrics["cpu"]
    assert metrics["converged"] is None  # trainer.patience=null: no rule


@needs_multi30k
def test_the_benchmark_times_the_training_loops_own_step(
    shared_cache, tmp_path, monkeypatch, one_thread
):
    """seq2seq-benchmark's training figure runs loop.train_step: a spy sees every step, and the
    weights it leaves are those of train_step on the same batches from the same start."""
    from seq2seq.bench.speed import measure_training
    from seq2seq.data.pipeline import prepare_data

    cfg = compose_config(*TINY, *TINY_RNN, f"data.cache_dir={shared_cache}", "run_dir=unused")
    data = prepare_data(cfg.data)
    calls = []
    real = loop.train_step

    def spy(parts, batches, **options):
        calls.append((len(batches), options))
        return real(parts, batches, **options)

    monkeypatch.setattr(loop, "train_step", spy)
    torch.manual_seed(0)
    _, benched = measure_training(cfg, data, amp_dtype=None, warmup=1, steps=2)
    expected = {"label_smoothing": cfg.trainer.label_smoothing, "clip_grad_norm": 1.0}
    assert calls == [(1, expected)] * 4  # warm-up, the FLOP count, 2 timed steps

    # the same four steps through the training's own parts give the same weights
    from seq2seq.runtime import DistInfo
    from seq2seq.training.setup import Runtime, setup_parts

    monkeypatch.setattr(loop, "train_step", real)
    torch.manual_seed(0)
    with_logger_off = compose_config(
        *TINY, *TINY_RNN, f"data.cache_dir={shared_cache}", "logger=off", f"run_dir={tmp_path}"
    )
    parts = setup_parts(with_logger_off, Runtime(torch.device("cpu"), None, DistInfo(), 1), data)
    b0, b1, b2 = (batch for batch, _ in zip(parts.plan.epoch(0), range(3), strict=False))
    for batch in (b0, b1, b1, b2):  # warm-up; the FLOP count and 2 timed steps on b1, b2
        real(parts, [batch], **expected)
    for (name, ours), theirs in zip(
        parts.model.state_dict().items(), benched.state_dict().values(), strict=True
    ):
        assert torch.equal(ours, theirs), name
