"""Fixtures of the reliability tests: two tiny finished runs (RNN and Transformer), trained once
per session; tests that break a run work on a copy (``copy_run``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from seq2seq.training import train
from tests.conftest import MULTI30K, TINY_TRANSFORMER, compose_config
from tests.reliability.reliability_tools import tiny_overrides


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
