"""Fixtures of the reliability tests; the runs they break or read come from tests/conftest.py's
``tiny_run`` (each test its own copy)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def finished(tiny_run) -> Path:
    """This test's copy of a finished 4-step RNN run trained through seq2seq-train (so it has
    Hydra's .hydra/ records)."""
    return tiny_run(through_cli=True)
