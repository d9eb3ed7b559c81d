"""Fixtures of the export tests: a tiny de/en corpus and, trained on it once per session
(``tiny_runs``), a Transformer that has learned its six sentence pairs (so greedy outputs are
real sentences with wide margins)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TINY_TRANSFORMER
from tests.reliability.reliability_tools import write_corpus

# 60 updates at a constant lr of 5e-3 without dropout: the tiny model learns the six pairs
# (test BLEU 100), so its greedy outputs are whole sentences, each step won by a wide margin
LEARNED = [
    *TINY_TRANSFORMER,
    "trainer.max_steps=60",
    "trainer.val_every=60",
    "optim.lr=0.005",
    "optim.schedule=constant",
    "model.dropout=0.0",
    "data.vocab.size=100",
]


@pytest.fixture(scope="session")
def export_corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("export_corpus"))


@pytest.fixture(scope="module")
def learned_run(tiny_runs, export_corpus, tmp_path_factory) -> Path:
    """The learned Transformer: this module's own copy (an export may be written into it)."""
    into = tmp_path_factory.mktemp("learned") / "run"
    return tiny_runs.copy(f"data.dir={export_corpus}", *LEARNED, into=into)
