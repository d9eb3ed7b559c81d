"""A training that failed to run, recorded for seq2seq-compare (which lists it as failed).

seq2seq-train calls :func:`record_failure` when ``train(cfg)`` raises: a run directory that
held nothing (or an earlier failure) gets ``metrics.json`` with ``status: failed`` and the
error's line; one that held a run, or that the training refused, is left as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .rundir import Holds, RunDirError, inspect


def held_before(run_dir: Path) -> Holds | None:
    """What ``run_dir`` holds before the training starts; None when its metrics.json cannot
    be read (the training refuses it)."""
    try:
        return inspect(run_dir).holds
    except RunDirError:
        return None


def kept_as_it_was(held: Holds | None) -> bool:
    """The directory held a run (unfinished or finished): an interrupt must leave it so."""
    return held not in (None, Holds.nothing, Holds.failed)


def record_failure(run_dir: Path, cfg, err: Exception, held: Holds | None) -> dict:
    """The failure record of ``err`` (``status``, the error's first line, ``model``,
    ``attention``; an out-of-memory error names data.max_tokens), written as
    ``run_dir/metrics.json`` by rank 0 unless the directory is left as it was: then the
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
        write_failure(run_dir / "metrics.json", failure)
    return failure


def write_failure(path: Path, failure: dict) -> None:
    """Record a failed start for seq2seq-compare, never over a finished run's metrics
    (a mistyped resume must not destroy them) and never raising (the error line comes next)."""
    try:
        if path.is_file() and json.loads(path.read_text(encoding="utf-8")).get("status") in (
            "finished",
            "diverged",
        ):
            return
    except (OSError, ValueError, AttributeError):
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(failure, indent=2) + "\n", encoding="utf-8")
    except OSError:
        pass
