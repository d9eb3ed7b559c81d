"""Sweeps that resume: the same sweep run again into the same sweep directory skips the jobs
that finished, resumes the interrupted ones from their last checkpoint, re-runs the failed
ones, and ends with one line, ``N finished, M resumed, K failed`` (:func:`summary_line`).

Two halves that meet only through files in the sweep directory, so they work with every
launcher (basic, joblib, submitit: the jobs may run in other processes or on other machines):

- :class:`ResumableSweep`, a Hydra callback (``hydra.callbacks`` in configs/train.yaml), runs
  in the process that starts the sweep. ``on_multirun_start`` copies each existing job's
  Hydra records into ``<sweep dir>/.seq2seq_sweep/`` (Hydra rewrites them when a job
  starts, also for a job that is then skipped); ``on_multirun_end`` reads the outcome every job
  recorded there, prints the summary line on stderr and exits 1 when a job failed.
- :class:`SweepJob` (the job's records), used by each job in :mod:`seq2seq.cli.train`,
  wherever it runs, after :func:`seq2seq.training.rundir.plan_job` decided what the job's
  directory calls for.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from ..run_files import HYDRA, HYDRA_RECORDS

STATE_DIR = ".seq2seq_sweep"  # inside the sweep directory; no run's records or results in it
OUTCOMES = ("finished", "resumed", "failed")  # what a job of this sweep ended as


def summary_line(finished: int, resumed: int, failed: int) -> str:
    """The sweep's last line on stderr. Every job of the sweep is counted once:
    ``finished``: skipped because it had finished (or diverged) before, or trained from
    scratch to the end now; ``resumed``: continued from its last checkpoint and ended
    now; ``failed``: ended without a result (it failed, was interrupted, its process died, or
    its directory holds a different run)."""
    return f"{finished} finished, {resumed} resumed, {failed} failed"


# --------------------------------------------------------------------------- the records


def _job_dirs(sweep_dir: Path):
    """Run directories below ``sweep_dir`` (those with Hydra records), not looking inside one."""
    for root, dirs, _ in os.walk(sweep_dir):
        if HYDRA in dirs and Path(root) != sweep_dir:
            dirs[:] = []
            yield Path(root)
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))


def _is_main_rank() -> bool:
    return os.environ.get("RANK", "0") == "0"


@dataclass
class SweepJob:
    """One job's records in ``<sweep dir>/.seq2seq_sweep/``: the copy of its previous
    Hydra records and the outcome it ended with (``jobs/<key>/outcome.json``)."""

    state: Path
    run_dir: Path
    key: str  # the run directory relative to the sweep directory

    @classmethod
    def of(cls, sweep_dir: str | os.PathLike, run_dir: Path) -> SweepJob:
        sweep = Path(os.path.abspath(sweep_dir))
        run = Path(os.path.abspath(run_dir))
        try:
            key = run.relative_to(sweep).as_posix()
        except ValueError:  # hydra.sweep.subdir outside the sweep directory
            key = run.name
        return cls(sweep / STATE_DIR, run, key)

    def record(self, outcome: str, detail: str) -> None:
        """Write this job's outcome (``started`` first, then one of :data:`OUTCOMES`)."""
        if not _is_main_rank():
            return
        path = self.state / "jobs" / self.key / "outcome.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".outcome.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"outcome": outcome, "detail": detail}) + "\n", encoding="utf-8")
        tmp.replace(path)

    def restore_hydra_records(self) -> None:
        """Put back the Hydra records the run had before this sweep started (Hydra has
        just written this job's over them), bytes and times, for a run left as it was."""
        saved = self.state / "hydra" / self.key
        if not saved.is_dir():
            return
        for path in saved.iterdir():
            shutil.copy2(path, self.run_dir / HYDRA / path.name)

    def detach_run_log(self) -> None:
        """Stop logging into the run's own log file (Hydra's job log, e.g. ``train.log``):
        what the launcher logs after a skipped job (submitit: "Job completed successfully")
        must not be appended to a run left as it was."""
        root = logging.getLogger()
        for handler in list(root.handlers):
            if isinstance(handler, logging.FileHandler) and self.run_dir in (
                Path(handler.baseFilename).parents
            ):
                root.removeHandler(handler)
                handler.close()

    def started_this_process(self) -> bool:
        """Whether this job runs in the process that started the sweep (the basic launcher):
        then an interrupted job stops the sweep."""
        try:
            sweep = json.loads((self.state / "sweep.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return sweep.get("pid") == os.getpid()


def read_outcomes(state: Path) -> dict[str, dict]:
    """job key -> its outcome record (``started`` for a job whose process died)."""
    outcomes = {}
    jobs = state / "jobs"
    for path in sorted(jobs.rglob("outcome.json"), key=_job_order) if jobs.is_dir() else []:
        key = path.parent.relative_to(jobs).as_posix()
        try:
            outcomes[key] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            outcomes[key] = {"outcome": "started", "detail": ""}
    return outcomes


def _job_order(path: Path) -> tuple[int, str]:
    """Jobs by their number (``10_...`` after ``9_...``), then by name."""
    number = path.parent.name.partition("_")[0]
    return (int(number) if number.isdigit() else sys.maxsize, path.as_posix())


def count(outcomes: dict[str, dict]) -> tuple[dict[str, int], list[str]]:
    """Counts by :data:`OUTCOMES` and one line per failed job."""
    counts = dict.fromkeys(OUTCOMES, 0)
    failures = []
    for key, record in outcomes.items():
        outcome = record.get("outcome")
        if outcome not in ("finished", "resumed"):
            detail = record.get("detail") or "its process ended without recording an outcome"
            failures.append(f"failed: {key}: {detail}")
            outcome = "failed"
        counts[outcome] += 1
    return counts, failures


class ResumableSweep(Callback):
    """Hydra callback of seq2seq-train's sweeps (see the module docstring)."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:  # noqa: ARG002
        sweep = Path(os.path.abspath(str(config.hydra.sweep.dir)))
        state = sweep / STATE_DIR
        shutil.rmtree(state, ignore_errors=True)  # an earlier sweep's, killed before its end
        (state / "jobs").mkdir(parents=True)
        if sweep.is_dir():
            for run_dir in _job_dirs(sweep):
                copy = state / "hydra" / run_dir.relative_to(sweep)
                copy.mkdir(parents=True, exist_ok=True)
                for name in HYDRA_RECORDS:
                    if (run_dir / HYDRA / name).is_file():
                        shutil.copy2(run_dir / HYDRA / name, copy / name)
        (state / "sweep.json").write_text(json.dumps({"pid": os.getpid()}) + "\n")

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:  # noqa: ARG002
        state = Path(os.path.abspath(str(config.hydra.sweep.dir))) / STATE_DIR
        counts, failures = count(read_outcomes(state))
        for line in failures:
            print(line, file=sys.stderr)
        print(summary_line(**counts), file=sys.stderr, flush=True)
        shutil.rmtree(state, ignore_errors=True)
        if counts["failed"]:
            sys.exit(1)
