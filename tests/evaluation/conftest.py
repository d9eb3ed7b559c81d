"""Fixtures of the gold-alignment tests: a tiny de/en corpus, two tiny runs on it (a Transformer
de->en and an RNN en->de, the other direction), trained once per session, and the gold files."""

from __future__ import annotations

from pathlib import Path

import pytest

from seq2seq.training import train
from tests.conftest import TINY_TRANSFORMER, compose_config
from tests.evaluation.gold_fixtures import write_gold
from tests.reliability.reliability_tools import tiny_overrides, write_corpus


@pytest.fixture(scope="session")
def gold_corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("gold_corpus"))


@pytest.fixture(scope="session")
def gold_runs(tmp_path_factory, shared_cache, gold_corpus) -> dict[str, Path]:
    """``forward``: a 4-step Transformer de->en (2 heads, 1 layer); ``reverse``: a 4-step RNN
    en->de, both on the tiny corpus."""
    runs = {}
    for name, extra in (
        ("forward", [*TINY_TRANSFORMER]),
        ("reverse", ["data.src=en", "data.tgt=de"]),
    ):
        run_dir = tmp_path_factory.mktemp(f"gold_{name}")
        overrides = tiny_overrides(
            shared_cache, f"data.dir={gold_corpus}", f"run_dir={run_dir}", *extra
        )
        train(compose_config(*overrides))
        runs[name] = run_dir
    return runs


@pytest.fixture
def gold_files(tmp_path) -> dict[str, Path]:
    return write_gold(tmp_path / "gold")
