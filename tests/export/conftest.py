"""Fixtures of the export tests: a tiny de/en corpus and, trained once per session on it, a
Transformer that has learned its six sentence pairs (so greedy outputs are real sentences with
wide margins) and a 2-step RNN (to be refused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seq2seq.training import train
from tests.conftest import TINY_TRANSFORMER, compose_config
from tests.reliability.reliability_tools import tiny_overrides, write_corpus

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


@pytest.fixture(scope="session")
def learned_run(tmp_path_factory, shared_cache, export_corpus) -> Path:
    run_dir = tmp_path_factory.mktemp("export_transformer")
    overrides = tiny_overrides(
        shared_cache, f"data.dir={export_corpus}", f"run_dir={run_dir}", *LEARNED
    )
    train(compose_config(*overrides))
    return run_dir


@pytest.fixture(scope="session")
def rnn_run(tmp_path_factory, shared_cache, export_corpus) -> Path:
    run_dir = tmp_path_factory.mktemp("export_rnn")
    overrides = tiny_overrides(
        shared_cache, f"data.dir={export_corpus}", f"run_dir={run_dir}", "trainer.max_steps=2"
    )
    train(compose_config(*overrides))
    return run_dir
