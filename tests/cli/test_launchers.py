"""Hydra launcher plugins: the same sweep through joblib (parallel local processes) and
submitit's local executor (what submitit_slurm runs on a cluster), then seq2seq-compare on it."""

from __future__ import annotations

import subprocess

import pytest

from seq2seq.compare import compare
from tests.cli.runner import run_command
from tests.conftest import needs_multi30k, tiny_overrides

LAUNCHERS = {
    "joblib": ["hydra.launcher.n_jobs=2"],
    "submitit_local": ["hydra.launcher.timeout_min=10"],
}


@needs_multi30k
@pytest.mark.slow
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_sweep_runs_through_launcher_plugin(launcher, shared_cache, tmp_path):
    sweep = tmp_path / "sweep"

    def run_sweep() -> subprocess.CompletedProcess:
        return run_command(
            "train",
            "-m",
            f"hydra/launcher={launcher}",
            *LAUNCHERS[launcher],
            *tiny_overrides(shared_cache, "attention=none,additive", f"hydra.sweep.dir={sweep}"),
            timeout=900,
        )

    result = run_sweep()
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == "2 finished, 0 resumed, 0 failed"
    names = ["0_seed1234_rnn_none", "1_seed1234_rnn_additive"]
    assert sorted(p.name for p in sweep.iterdir() if p.name[0].isdigit()) == names
    rows = compare([sweep], tmp_path / "report", n_bootstrap=0)
    assert sorted((r["variant"], r["status"], r["steps"]) for r in rows) == [
        ("additive", "finished", 4),
        ("none", "finished", 4),
    ]

    # the same sweep again, its jobs in the launcher's processes: both skipped, untouched
    def files() -> dict:
        return {
            p: (p.stat().st_mtime_ns, p.read_bytes())
            for name in names
            for p in sorted((sweep / name).rglob("*"))
            if p.is_file()
        }

    before = files()
    again = run_sweep()
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert again.stderr.strip().splitlines()[-1] == "2 finished, 0 resumed, 0 failed"
    assert files() == before
