"""Fixtures for the decoding tests (toy models live in decoding_toy_model.py beside this file;
the name is unique so it cannot clash with another test directory's helper module)."""

from __future__ import annotations

import pytest
from decoding_toy_model import ToyGRUSeq2Seq


@pytest.fixture(scope="session")
def toy_model() -> ToyGRUSeq2Seq:
    return ToyGRUSeq2Seq(seed=0).eval()


@pytest.fixture(autouse=True)
def every_test_one_thread(one_thread):
    """The toy models' ops are tiny: intra-op threads only add synchronisation, and on a busy
    2-core machine they made these tests 10-30x slower (tests/conftest.py's ``one_thread``)."""
