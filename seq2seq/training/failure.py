"""A training that failed to run, recorded for seq2seq-compare (which lists it as failed).

seq2seq-train calls :func:`record_failure` when ``train(cfg)`` raises: a run directory that
held nothing (or an earlier failure) gets metrics (:mod:`seq2seq.run_files`) with
``status: failed`` and the error's line; one that held a run, or that the training refused,
is left as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import run_files
from ..run_files import RunFileError
from .rundir import ENDED, Contents, Holds, RunDirError, inspect


def held_before(run_dir: Path, found: Contents | None = None) -> Holds | None:
    """What ``run_dir`` holds before the training starts (``found``: what a sweep job's plan
    already read); None when its metrics cannot be read (the training refuses it)."""
    try:
        return (found or inspect(run_dir)).holds
    except RunFileError:
        return None


def kept_as_it_was(held: Holds | None) -> bool:
    """The directory held a run (unfinished or finished): an interrupt must leave it so."""
    return held not in (None, Holds.nothing, Holds.failed)


def record_failure(run_dir: Path, cfg, err: Exception, held: Holds | None) -> dict:
    """The failure record of ``err`` (``status``, the error's first line, ``model``,
    ``attention``; an out-of-memory error names data.max_tokens), written as the run's
    metrics by rank 0 unless the directory is left as it was: then the
    record says ``"untouched": True``."""
    message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, RuntimeError) and "out of memory" in message.lower():
        message = (
            f"out of memory: lower data.max_tokens (now {cfg.data.max_tokens}) [{message[:120]}]"
        )
    failure = {
        "status": "failed",
        "error": message,
        "model": cfg.model.name,
        "attention": cfg.attention.name,
    }
    if isinstance(err, RunDirError) or held not in (Holds.nothing, Holds.failed):
        failure["untouched"] = True
    elif int(os.environ.get("RANK", 0)) == 0:  # DDP: rank 0 records the run's failure
        write_failure(run_dir, failure)
    return failure


def write_failure(run_dir: Path, failure: dict) -> None:
    """Record a failed start in the run's metrics for seq2seq-compare, never over a
    finished run's (a mistyped resume must not destroy them) and never raising (the error
    line comes next)."""
    try:
        if run_files.read_metrics(run_dir).get("status") in ENDED:
            return
    except RunFileError:
        pass
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        run_files.write_metrics(run_dir, failure)
    except OSError:
        pass
