"""Faults during training: non-finite losses, an impossible run directory, out of memory."""

from __future__ import annotations

import json
import math

import pytest
import torch

from seq2seq.checkpoint import load_checkpoint
from seq2seq.errors import ConfigError
from seq2seq.training import loop, recipe, train
from tests.cli.runner import assert_one_error_line, run_main
from tests.conftest import compose_config, needs_multi30k, tiny_overrides

pytestmark = needs_multi30k


def nan_on(monkeypatch, bad_calls: set[int]) -> dict:
    """Make the training loss (not the validation loss) NaN on the given 1-based calls."""
    real = loop.output_losses  # the training step's loss; validation uses token_losses
    calls = {"n": 0}

    def flaky(features, output_layer, target, **kwargs):
        loss, nll = real(features, output_layer, target, **kwargs)
        calls["n"] += 1
        if calls["n"] in bad_calls:
            return loss * float("nan"), nll
        return loss, nll

    monkeypatch.setattr(loop, "output_losses", flaky)
    return calls


def record_saves(monkeypatch) -> list[tuple[str, int, dict]]:
    """(file name, step, model weights) of every checkpoint the loop writes."""
    saved = []
    real = loop.save_checkpoint

    def spy(payload, path):
        weights = {k: v.detach().clone() for k, v in payload["model"].items()}
        saved.append((path.name, payload["progress"]["step"], weights))
        real(payload, path)

    monkeypatch.setattr(loop, "save_checkpoint", spy)
    return saved


def test_non_finite_losses_stop_training_and_keep_the_last_good_checkpoint(
    shared_cache, tmp_path, monkeypatch
):
    calls = nan_on(monkeypatch, set(range(5, 1000)))  # steps 1-4 fine, then NaN forever
    saved = record_saves(monkeypatch)
    cfg = compose_config(
        *tiny_overrides(
            shared_cache,
            f"run_dir={tmp_path}",
            "trainer.max_steps=20",
            "trainer.max_bad_steps=3",
        )
    )
    metrics = train(cfg)
    assert calls["n"] == 4 + 3  # stopped right after the 3rd non-finite loss in a row
    assert metrics["stop_reason"] == "3 consecutive non-finite losses (lower optim.lr or use fp32)"
    assert metrics["status"] == "diverged"  # scored, but seq2seq-compare flags it
    assert metrics["steps"] == 4 and metrics["skipped_steps"] == 3
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["progress"]["step"] == 4 and last["progress"]["skipped_steps"] == 3
    good = [w for name, step, w in saved if name == "last.pt" and step == 4][0]
    for key, tensor in last["model"].items():
        assert torch.isfinite(tensor).all(), key
        assert torch.equal(tensor, good[key]), key  # the weights of the last good step
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best["progress"]["step"] in (2, 4)
    assert all(math.isfinite(h["val_loss"]) for h in last["progress"]["history"])


def test_a_few_non_finite_losses_are_skipped_and_counted(shared_cache, tmp_path, monkeypatch):
    nan_on(monkeypatch, {3, 4})
    cfg = compose_config(
        *tiny_overrides(
            shared_cache, f"run_dir={tmp_path}", "trainer.max_steps=6", "trainer.max_bad_steps=3"
        )
    )
    metrics = train(cfg)
    assert metrics["stop_reason"] == "max_steps=6"
    assert metrics["status"] == "finished"
    assert metrics["steps"] == 6 and metrics["skipped_steps"] == 2
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["skipped_steps"] == 2


def test_impossible_run_directory_fails_before_training(shared_cache, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    run_dir = blocker / "run"

    def no_data(*args, **kwargs):
        raise AssertionError("data prepared for an unusable run directory")

    monkeypatch.setattr(recipe, "prepare_data", no_data)
    with pytest.raises(ConfigError) as err:
        train(compose_config(*tiny_overrides(shared_cache, f"run_dir={run_dir}")))
    assert str(err.value) == (
        f"run directory {run_dir} is not writable (Not a directory); choose hydra.run.dir=DIR"
    )


def test_impossible_run_directory_through_the_cli(shared_cache, tmp_path, capfd, monkeypatch):
    """Hydra itself would create hydra.run.dir first and fail with a traceback."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    run_dir = blocker / "deeper" / "run"
    argv = tiny_overrides(shared_cache, f"hydra.run.dir={run_dir}")
    result = run_main("train", argv, capfd, monkeypatch)
    assert_one_error_line(
        result,
        f"run directory {run_dir} cannot be created ({blocker} is a file, not a directory); "
        "choose hydra.run.dir=DIR",
    )


@pytest.mark.parametrize("error", [RuntimeError, torch.OutOfMemoryError])
def test_out_of_memory_names_max_tokens(error, shared_cache, tmp_path, capfd, monkeypatch):
    text = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)"

    def oom(*args, **kwargs):
        raise error(text)

    monkeypatch.setattr(recipe, "fit", oom)
    argv = tiny_overrides(shared_cache, f"hydra.run.dir={tmp_path}")
    result = run_main("train", argv, capfd, monkeypatch)
    assert_one_error_line(result, f"out of memory: lower data.max_tokens (now 512) [{text}]")
    failure = json.loads((tmp_path / "metrics.json").read_text())
    assert failure["status"] == "failed" and "data.max_tokens" in failure["error"]


def test_a_real_bug_still_shows_its_traceback(shared_cache, tmp_path, capfd, monkeypatch):
    """Only user errors are shortened; a RuntimeError that is not OOM is a bug to report."""

    def bug(*args, **kwargs):
        raise RuntimeError("shape mismatch inside the model")

    monkeypatch.setattr(recipe, "fit", bug)
    result = run_main(
        "train", tiny_overrides(shared_cache, f"hydra.run.dir={tmp_path}"), capfd, monkeypatch
    )
    assert result.code == 1
    assert "shape mismatch inside the model" in result.stderr and not result.error_lines
