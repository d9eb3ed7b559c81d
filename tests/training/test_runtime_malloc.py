"""keep_freed_memory: glibc's mallopt takes the settings; the user's environment wins."""

from __future__ import annotations

import subprocess
import sys

import pytest

from seq2seq import runtime

CHECK = "from seq2seq.runtime import keep_freed_memory as k; print(k())"


def run_with(env: dict) -> str:
    out = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_applies_on_glibc_and_yields_to_the_environment():
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    base.pop("SEQ2SEQ_KEEP_FREED_MEMORY", None)
    libc_is_glibc = bool(__import__("platform").libc_ver()[0] == "glibc")
    assert run_with(base) == str(libc_is_glibc)
    assert run_with(base | {"MALLOC_TRIM_THRESHOLD_": "1000"}) == "False"
    assert run_with(base | {"SEQ2SEQ_KEEP_FREED_MEMORY": "0"}) == "False"


def test_values_are_within_glibc_limits():
    assert runtime.MMAP_THRESHOLD == 32 * 1024 * 1024  # HEAP_MAX_SIZE / 2: larger is refused
    assert runtime.TRIM_THRESHOLD >= runtime.MMAP_THRESHOLD
