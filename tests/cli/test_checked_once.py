"""Each command composes and checks its config once: counted on real commands, so a second
composition or a second check of the same config cannot creep back in.

Hydra's app composes twice by itself (``hydra.main`` asks the config for its mode, then
composes it for the run; each sweep job twice more); the pre-check composes once before it,
the one way to a one-line composition error (:mod:`seq2seq.cli.precheck`)."""

from __future__ import annotations

from collections import Counter

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl

import seq2seq.decoding
from seq2seq import validation
from seq2seq.decoding import driver
from seq2seq.training import checks
from tests.cli.runner import run_main
from tests.conftest import tiny_overrides

HYDRA_COMPOSITIONS = 2  # hydra.main: the mode, then the run's config


@pytest.fixture
def calls(monkeypatch) -> Counter:
    """How often each composition and check ran, by name."""
    counted: Counter = Counter()

    def spy(owner, name: str, as_name: str) -> None:
        real = getattr(owner, name)

        def wrapper(*args, **kwargs):
            counted[as_name] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    spy(ConfigLoaderImpl, "load_configuration", "compose")  # every composition, ours and Hydra's
    spy(validation, "_check_trainer", "train config")  # once per check_train_config
    spy(validation, "_check_decode", "decode options")  # every config's decode.* ranges
    spy(checks, "check_tokenize", "train tokenizer")
    spy(seq2seq.decoding, "translate_batches", "decode")  # decode_ids imports it per call
    spy(driver, "check_beam_args", "beam guard")
    return counted


def test_a_train_is_composed_once_before_hydra_and_checked_once(
    calls, shared_cache, tmp_path, capfd, monkeypatch
):
    argv = tiny_overrides(shared_cache, f"hydra.run.dir={tmp_path / 'run'}")
    result = run_main("train", argv, capfd, monkeypatch)
    assert result.code == 0, result.stderr[-2000:]
    assert calls["compose"] == 1 + HYDRA_COMPOSITIONS
    assert calls["train config"] == 1  # the pre-check's: the job does not check again
    assert calls["train tokenizer"] == 1
    assert calls["decode options"] == 1
    # the decoding library guards each call once (validation, the final test), not per batch
    assert calls["decode"] >= 2
    assert calls["beam guard"] == calls["decode"]


def test_a_sweep_checks_each_job_once(calls, shared_cache, tmp_path, capfd, monkeypatch):
    tiny = [o for o in tiny_overrides(shared_cache) if not o.startswith("trainer.max_steps=")]
    argv = ["-m", *tiny, "trainer.max_steps=1", "trainer.seed=1,2", f"hydra.sweep.dir={tmp_path}"]
    result = run_main("train", argv, capfd, monkeypatch)
    assert result.code == 0, result.stderr[-2000:]
    assert "2 finished, 0 resumed, 0 failed" in result.stderr
    # no pre-check composition with -m; Hydra's basic sweeper composes each job twice (it
    # validates the batch, then launches it)
    assert calls["compose"] == HYDRA_COMPOSITIONS + 2 * 2
    assert calls["train config"] == 2  # each job its own, in training.recipe.train
    assert calls["train tokenizer"] == 2


def test_an_evaluate_is_checked_once(calls, tiny_run, capfd, monkeypatch):
    run_dir = tiny_run()
    calls.clear()  # the session may have trained the tiny run just now
    argv = [f"run_dir={run_dir}", "device=cpu", "limit=4", "decode.beam_size=2"]
    result = run_main("evaluate", argv, capfd, monkeypatch)
    assert result.code == 0, result.stderr[-2000:]
    assert calls["compose"] == 1 + HYDRA_COMPOSITIONS
    assert calls["decode options"] == 1  # the pre-check's check_evaluate_config
    assert calls["decode"] == calls["beam guard"] == 1
