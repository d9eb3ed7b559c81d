"""The offline hub mirror the data tests load their hub fixtures from (built once a session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.hub_mirror import build_mirror


@pytest.fixture(scope="session")
def hub_mirror(tmp_path_factory) -> Path:
    """A directory of hub repo copies in their hub layouts (tests/fixtures/hub_mirror.py)."""
    return build_mirror(tmp_path_factory.mktemp("hub_mirror"))
