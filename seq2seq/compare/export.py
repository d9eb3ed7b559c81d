"""Small, committable summaries of finished runs, from which seq2seq-compare rebuilds the report
without checkpoints (docs/comparison/runs/ holds the early-training study's,
docs/comparison/converged/ the converged grid's).

Per run (the names are :mod:`seq2seq.run_files`'): the saved config and overrides, the
metrics, the history, the test hypotheses with the test sources and references they were
scored against, each gold evaluation's metrics, and of the alignment dump the diagnostics
computed from every test sentence (``TEST_DIAGNOSTICS``, which the report reads instead of the
matrices) plus the first ``keep_matrices`` sentences' matrices and pieces (for
alignments.png). Checkpoints, TensorBoard files and the vocabulary are left out.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from ..run_files import (
    ALIGNMENTS,
    EVAL,
    HISTORY,
    HYDRA_CONFIG,
    HYDRA_OVERRIDES,
    METRICS,
    TEST_ALIGNMENT_INDEX,
    TEST_ALIGNMENTS,
    TEST_DIAGNOSTICS,
    TEST_HYPS,
    TEST_REFERENCES,
    TEST_SOURCES,
)
from .diagnostics import attention_diagnostics
from .grid import MULTIRUN_FILE
from .runs import discover_runs, gold_evaluations

COPIED = (HYDRA_CONFIG, HYDRA_OVERRIDES, METRICS, HISTORY, TEST_HYPS, TEST_SOURCES, TEST_REFERENCES)


def export_run(run_dir: Path, out_dir: Path, *, keep_matrices: int = 3) -> Path:
    """Write ``run_dir``'s summary into ``out_dir`` (created); return ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = run_dir / name
        if source.is_file():
            (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, out_dir / name)
    for name in gold_evaluations(run_dir):  # the gold AER's record, not its hypotheses
        record = f"{EVAL}/{name}/{METRICS}"
        (out_dir / record).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run_dir / record, out_dir / record)
    diagnostics = attention_diagnostics(run_dir / ALIGNMENTS)
    if diagnostics is not None:
        (out_dir / ALIGNMENTS).mkdir(exist_ok=True)
        (out_dir / TEST_DIAGNOSTICS).write_text(
            json.dumps(diagnostics, indent=2) + "\n", encoding="utf-8"
        )
        kept = [str(i) for i in range(keep_matrices)]
        with np.load(run_dir / TEST_ALIGNMENTS) as data:
            np.savez_compressed(
                out_dir / TEST_ALIGNMENTS, **{k: data[k] for k in kept if k in data.files}
            )
        index = run_dir / TEST_ALIGNMENT_INDEX
        if index.is_file():
            lines = index.read_text(encoding="utf-8").splitlines()[:keep_matrices]
            (out_dir / TEST_ALIGNMENT_INDEX).write_text(
                "".join(x + "\n" for x in lines), encoding="utf-8"
            )
    return out_dir


def copy_sweep_definition(sweep_dir: Path, sweep_out: Path) -> None:
    """The sweep's ``multirun.yaml`` beside its exported jobs (written whole: built beside it,
    then renamed), so the report can name the jobs not exported yet."""
    source = sweep_dir / MULTIRUN_FILE
    if source.is_file():
        building = sweep_out / f".{MULTIRUN_FILE}.building"
        shutil.copyfile(source, building)
        building.replace(sweep_out / MULTIRUN_FILE)


def export_finished_job(run_dir: Path, exported: Path) -> Path:
    """A sweep job's summary, written whole or not at all to
    ``exported/<sweep dir name>/<job dir name>`` (the place
    :func:`seq2seq.training.rundir.exported_plan` looks): built beside it, then renamed into place, so a reader (or a ``git add`` of the
    folder) never sees half of one. An earlier summary there is replaced."""
    target = exported / run_dir.parent.name / run_dir.name
    target.parent.mkdir(parents=True, exist_ok=True)
    building = target.with_name(f".{target.name}.building")
    shutil.rmtree(building, ignore_errors=True)
    export_run(run_dir, building)
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        target.rename(old)
    building.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    copy_sweep_definition(run_dir.parent, target.parent)
    return target


def export_runs(
    paths: list[str | Path], out_dir: str | Path, *, keep_matrices: int = 3
) -> list[Path]:
    """Export every run found under ``paths`` to ``out_dir/<sweep folder>/<run folder>``."""
    out_dir = Path(out_dir)
    run_dirs = discover_runs(paths)
    written = [
        export_run(
            run_dir, out_dir / run_dir.parent.name / run_dir.name, keep_matrices=keep_matrices
        )
        for run_dir in run_dirs
    ]
    for sweep_dir in dict.fromkeys(r.parent for r in run_dirs):  # once per sweep, not per run
        copy_sweep_definition(sweep_dir, out_dir / sweep_dir.name)
    return written
