"""Fixtures of the gold-alignment tests: a tiny de/en corpus, two tiny runs on it (a Transformer
de->en and an RNN en->de, the other direction), trained once per session, and the gold files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TINY_TRANSFORMER
from tests.evaluation.gold_fixtures import write_gold
from tests.reliability.reliability_tools import write_corpus


@pytest.fixture(scope="session")
def gold_corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("gold_corpus"))


@pytest.fixture
def gold_runs(tiny_run, gold_corpus) -> dict[str, Path]:
    """This test's copies of ``forward``: a 4-step Transformer de->en (2 heads, 1 layer), and
    ``reverse``: a 4-step RNN en->de, both on the tiny corpus."""
    corpus = f"data.dir={gold_corpus}"
    return {
        "forward": tiny_run(corpus, *TINY_TRANSFORMER),
        "reverse": tiny_run(corpus, "data.src=en", "data.tgt=de"),
    }


@pytest.fixture
def gold_files(tmp_path) -> dict[str, Path]:
    return write_gold(tmp_path / "gold")
