"""scripts/fault_drill.py: its default schedule has every fault kind the drill promises, and a
short drill (SIGTERM during validation, a second concurrent writer, SIGINT during the final
test) passes every check, then the run finishes with metrics.json agreeing with the
checkpoints."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import needs_multi30k

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fault_drill.py"


def load_drill():
    spec = importlib.util.spec_from_file_location("fault_drill", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_default_schedule_has_every_fault_kind():
    drill = load_drill()
    assert drill.DEFAULT_FAULTS >= 24
    kinds = drill.schedule(drill.DEFAULT_FAULTS)
    assert len(kinds) == drill.DEFAULT_FAULTS  # fixed: --seed draws the moments
    assert kinds == drill.schedule(drill.DEFAULT_FAULTS)
    names = [k.name for k in kinds]
    for name in (
        "sigterm-train",
        "sigkill-train",
        "sigkill-checkpoint",
        "sigterm-checkpoint",
        "sigterm-validation",
        "sigkill-validation",
        "sigkill-startup",
        "disk-full",
        "concurrent",
        "sigint-data-prep",
        "sigterm-data-prep",
        "sigint-evaluate",
        "sigterm-evaluate",
        "sigint-final-test",
        "sigterm-final-test",
    ):
        assert name in names, name
    assert names[-2:] == ["sigint-final-test", "sigterm-final-test"]  # the run has ended then
    assert drill.default_steps(kinds) >= drill.min_steps(kinds)
    assert drill.schedule(3)[-1].name == "sigint-final-test"


def test_final_test_kinds_must_come_last():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--kinds", "sigint-final-test,sigterm-train"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "the final-test kinds must come last" in result.stderr


def test_expected_history_has_the_final_step():
    drill = load_drill()
    assert drill.expected_history(7, ended=False) == [2, 4, 6]
    assert drill.expected_history(7, ended=True) == [2, 4, 6, 7]
    assert drill.expected_history(8, ended=True) == [2, 4, 6, 8]
    assert drill.show_steps([2, 4, 6, 7]) == "2..6 x3 +7"


@needs_multi30k
@pytest.mark.slow
def test_fault_drill_survives_validation_concurrent_and_final_test_faults(shared_cache, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--kinds",
            "sigterm-validation,concurrent,sigint-final-test",
            "--seed",
            "1",
            f"hydra.run.dir={tmp_path / 'run'}",
            f"data.cache_dir={shared_cache}",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert lines[-1] == "faults survived: 3/3"
    faults = [line for line in lines if line.startswith("fault ") and "/3 " in line]
    assert len(faults) == 3 and all(": ok" in line for line in faults), faults
    assert "during the validation of step" in faults[0] and "exit 143" in faults[0]
    assert "2nd writer exit 1 in " in faults[1], faults[1]
    assert "'error: <run> is in use: pid " in faults[1], faults[1]
    assert "in the final test" in faults[2] and "exit 130" in faults[2]
    final = next(line for line in lines if line.startswith("final run:"))
    assert "redid the final test -> exit 0" in final and ": ok" in final, final


def test_fault_drill_refuses_a_used_run_dir(tmp_path):
    (tmp_path / "something").write_text("x")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"error: hydra.run.dir={tmp_path} is not empty; give a new directory\n"
    )
