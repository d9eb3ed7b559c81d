"""Fixtures of the reliability tests: two tiny finished runs (RNN and Transformer), trained once
per session; tests that break a run work on a copy (``copy_run``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from seq2seq.training import train
from tests.conftest import MULTI30K, TINY_TRANSFORMER, compose_config
from tests.reliability.reliability_tools import run_main, tiny_overrides


def _train(run_dir: Path, shared_cache: Path, *extra: str) -> Path:
    if MULTI30K is None:
        pytest.skip("local Multi30k copy not found")
    train(compose_config(*tiny_overrides(shared_cache, f"run_dir={run_dir}", *extra)))
    return run_dir


@pytest.fixture(scope="session")
def rnn_run(tmp_path_factory, shared_cache) -> Path:
    """A finished 4-step RNN run (TINY + TINY_RNN): best.pt, last.pt, metrics.json."""
    return _train(tmp_path_factory.mktemp("rnn_run"), shared_cache)


@pytest.fixture(scope="session")
def transformer_run(tmp_path_factory, shared_cache) -> Path:
    """A finished 4-step Transformer run (TINY + TINY_TRANSFORMER)."""
    return _train(tmp_path_factory.mktemp("transformer_run"), shared_cache, *TINY_TRANSFORMER)


@pytest.fixture
def copy_run(tmp_path):
    def copy(run_dir: Path, name: str = "run") -> Path:
        return Path(shutil.copytree(run_dir, tmp_path / name))

    return copy


@pytest.fixture(scope="session")
def cli_run(tmp_path_factory, shared_cache) -> Path:
    """A finished 4-step RNN run trained through seq2seq-train (so it has .hydra/ records)."""
    run_dir = tmp_path_factory.mktemp("cli_run") / "run"
    mp = pytest.MonkeyPatch()
    try:

        class _Fd:  # run_main wants capfd; this fixture only needs the exit code
            @staticmethod
            def readouterr():
                return "", ""

        result = run_main(
            "train", tiny_overrides(shared_cache, f"hydra.run.dir={run_dir}"), _Fd, mp
        )
    finally:
        mp.undo()
    assert result.code == 0
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "finished"
    return run_dir


@pytest.fixture
def finished(cli_run, tmp_path) -> Path:
    return Path(shutil.copytree(cli_run, tmp_path / "finished"))
