"""seq2seq-compare on real tiny runs: a multirun sweep and a failed run."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from seq2seq.compare import compare, variant_label
from tests.conftest import TINY, TINY_RNN, needs_multi30k


def train_cli(*args: str, multirun: bool = False) -> subprocess.CompletedProcess:
    flags = ["-m"] if multirun else []  # Hydra wants its flags before the overrides
    return subprocess.run(
        [sys.executable, "-m", "seq2seq.cli.train", *flags, *TINY, *TINY_RNN, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )


def test_variant_labels():
    assert variant_label({"model": {"name": "transformer"}}) == "transformer"
    assert (
        variant_label(
            {"model": {"name": "rnn"}, "attention": {"name": "multiplicative", "score": "dot"}}
        )
        == "multiplicative/dot"
    )
    assert (
        variant_label(
            {
                "model": {"name": "rnn"},
                "attention": {"name": "local", "mode": "monotonic", "score": "general"},
            }
        )
        == "local-m/general"
    )
    assert (
        variant_label(
            {"model": {"name": "rnn"}, "attention": {"name": "additive", "wiring": "luong"}}
        )
        == "additive (luong)"
    )


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run directories"):
        compare([tmp_path], tmp_path / "out")


@needs_multi30k
@pytest.mark.slow
def test_multirun_sweep_and_failed_run_compare(shared_cache, tmp_path):
    sweep = tmp_path / "sweep"
    result = train_cli(
        "attention=none,additive",
        f"data.cache_dir={shared_cache}",
        f"hydra.sweep.dir={sweep}",
        "dump_alignments=true",
        multirun=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    # a failure inside the run (bad values are refused before a run directory exists)
    failed = train_cli(
        f"data.cache_dir={shared_cache}",
        f"hydra.run.dir={sweep / 'failed'}",
        f"data.dir={tmp_path / 'missing'}",
    )
    assert failed.returncode == 1 and "error: data directory" in failed.stderr

    # a run stopped on non-finite losses: scored on its best checkpoint, flagged as diverged
    diverged = sweep / "diverged"
    shutil.copytree(next(sweep.glob("*_rnn_none")), diverged)
    metrics = json.loads((diverged / "metrics.json").read_text())
    metrics.update(status="diverged", stop_reason="3 consecutive non-finite losses")
    (diverged / "metrics.json").write_text(json.dumps(metrics))

    out = tmp_path / "report"
    rows = compare([sweep], out, n_bootstrap=50)
    for name in (
        "comparison.md",
        "comparison.csv",
        "bleu_by_length.png",
        "curves.png",
        "alignments.png",
    ):
        assert (out / name).is_file(), name
    for name in ("bleu_by_length.png", "curves.png", "alignments.png"):
        with Image.open(out / name) as image:
            image.verify()
    assert sorted((r["variant"], r["status"]) for r in rows) == [
        ("additive", "finished"),
        ("additive [failed]", "failed"),
        ("none", "finished"),
        ("none [diverged]", "diverged"),
    ]
    assert [r["status"] for r in rows] == ["finished", "finished", "diverged", "failed"]
    table = list(csv.DictReader((out / "comparison.csv").open()))
    assert len(table) == 4
    finished = [r for r in table if r["status"] == "finished"]
    assert {r["variant"] for r in finished} == {"none", "additive"}
    assert all(float(r["test_bleu"]) >= 0 and int(r["steps"]) == 4 for r in finished)
    assert [r["p_vs_baseline"] for r in finished if r["variant"] == "none"] == ["baseline"]
    assert 0 <= float(next(r for r in finished if r["variant"] == "additive")["p_vs_baseline"]) <= 1
    md = (out / "comparison.md").read_text()
    assert "FAILED" in md and "does not exist" in md
    assert "DIVERGED `none [diverged]`" in md


@needs_multi30k
@pytest.mark.slow
def test_failed_job_does_not_kill_the_sweep(shared_cache, tmp_path):
    sweep = tmp_path / "sweep"
    result = train_cli(
        "optim.lr=-1,0.003",
        f"data.cache_dir={shared_cache}",
        f"hydra.sweep.dir={sweep}",
        multirun=True,
    )
    # every job ran; the exit status and the last line say one failed
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == "1 finished, 0 resumed, 1 failed"
    statuses = sorted(
        json.loads(p.read_text())["status"] for p in Path(sweep).glob("*/metrics.json")
    )
    assert statuses == ["failed", "finished"]
