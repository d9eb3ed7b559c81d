"""scripts/fault_drill.py: three faults (SIGTERM, SIGKILL mid-checkpoint, SIGTERM mid-checkpoint),
then the run finishes; every check must pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import needs_multi30k

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fault_drill.py"


@needs_multi30k
@pytest.mark.slow
def test_fault_drill_survives_three_faults(shared_cache, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--faults",
            "3",
            "--seed",
            "1",
            "--steps",
            "24",
            "--run-dir",
            str(tmp_path / "run"),
            "--cache-dir",
            str(shared_cache),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert lines[-1] == "faults survived: 3/3"
    faults = [line for line in lines if line.startswith("fault ") and "/3:" in line]
    assert len(faults) == 3 and all(": ok" in line for line in faults), faults
    assert any("checkpoint write" in line for line in faults)
    assert any(line.startswith("final run:") and line.endswith(": ok") for line in lines)


def test_fault_drill_refuses_a_used_run_dir(tmp_path):
    (tmp_path / "something").write_text("x")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--run-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == f"error: --run-dir {tmp_path} is not empty; give a new directory\n"
