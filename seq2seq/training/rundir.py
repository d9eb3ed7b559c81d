"""A run directory is the user's data: what it holds, one writer at a time, and the claim a
training makes on it before it writes anything.

- :func:`inspect`: nothing yet, a failed start, an unfinished run (a last checkpoint) or a
  finished one (its metrics say finished or diverged), read once: the
  :class:`Contents` carry what was read (the metrics, the checkpoint's header), so no later
  step reads the directory again.
- :func:`plan_job` and :func:`exported_plan`: what a sweep job does with its directory (skip,
  resume, train from scratch, refuse), decided on the same :class:`Contents`.
- :class:`RunLock`: ``.seq2seq.lock`` (pid, host, start time); a lock left by a dead process of
  this host is taken over with a warning.
- :func:`claim`: refuses, in one line and changing nothing, to train into a finished run
  (unless ``trainer.resume=true`` continues it or ``trainer.overwrite=true`` replaces it), into
  an unfinished run without either, or to resume a checkpoint of another model, attention,
  data or seed; clears a failed attempt's outputs; returns what it found.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from .. import run_files
from ..errors import CheckpointError, ConfigError
from ..run_files import BEST, LAST, METRICS, RUN_OUTPUTS, CheckpointHeader, RunFileError
from ..staging import PidLock

log = logging.getLogger("seq2seq.train")

LOCK_NAME = ".seq2seq.lock"
ENDED = ("finished", "diverged")  # the metrics' statuses of a run with results
# what a resumed run must share with its checkpoint: the model, what it reads, batch order,
# and the BLEU that picks the best checkpoint (one scale across the run's validations)
RESUME_KEYS = ("model", "attention", "data", "trainer.seed", "bleu")
# keys that may differ between two configs of one run: where it runs, what it logs
IGNORED_KEYS = (
    "run_dir",
    "exported_runs",
    "trainer.resume",
    "trainer.overwrite",
    "trainer.device",
    "trainer.num_threads",
    "trainer.log_every",
    "trainer.heatmaps",
    "decode.workers",
    "data.dir",
    "data.hub_mirror",
    "data.cache_dir",
    "data.progress",
)


class RunDirError(ConfigError):
    """A training refused its run directory; the directory was left as it was."""


class Holds(str, Enum):
    nothing = "nothing"  # new, or only the records of a start that failed before writing
    failed = "failed"  # a failed start's metrics or outputs, no last checkpoint
    unfinished = "unfinished"  # a last checkpoint, no final metrics: interrupted or running
    finished = "finished"  # the metrics say finished or diverged


@dataclass(frozen=True)
class Contents:
    """What :func:`inspect` found in a run directory, with what it read there."""

    holds: Holds
    detail: str = ""  # e.g. "status finished at step 200, test BLEU 31.20"
    step: int | None = None
    metrics: dict = field(default_factory=dict)  # {} when absent
    # the header of a finished run's last checkpoint, else its best; an unfinished run's last
    saved: CheckpointHeader | None = None
    unreadable: tuple[str, ...] = ()  # why a checkpoint tried for ``saved`` could not be read


def _read_header(paths: tuple[Path, ...]) -> tuple[CheckpointHeader | None, tuple[str, ...]]:
    """The header of the first of ``paths`` that exists and reads, and why those before it
    could not be read."""
    errors = []
    for path in (p for p in paths if p.is_file()):
        try:
            return run_files.read_checkpoint_header(path), tuple(errors)
        except CheckpointError as err:
            errors.append(str(err))
    return None, tuple(errors)


def inspect(run_dir: Path) -> Contents:
    """What ``run_dir`` holds (see :class:`Holds`); RunFileError when its metrics are there
    but cannot be read (the directory holds something no one can judge)."""
    metrics = run_files.read_metrics(run_dir)
    status = metrics.get("status")
    last = run_dir / LAST
    if status in ENDED:
        saved, unreadable = _read_header((last, run_dir / BEST))
        return Contents(
            Holds.finished,
            f"status {status} at {_ended_at(metrics)}",
            metrics.get("steps"),
            metrics,
            saved,
            unreadable,
        )
    if last.is_file():
        saved, unreadable = _read_header((last,))
        step = saved.step if saved is not None else None
        where = f"{LAST} at step {step}" if step is not None else LAST
        return Contents(Holds.unfinished, where, step, metrics, saved, unreadable)
    if status == "failed" or any(_has(run_dir / name) for name in RUN_OUTPUTS):
        return Contents(
            Holds.failed, f"failed before ({metrics.get('error', 'no checkpoint')})", None, metrics
        )
    return Contents(Holds.nothing, metrics=metrics)


def _ended_at(metrics: dict) -> str:
    """Where a run with results ended, in words: ``step 200, test BLEU 31.20``."""
    bleu = metrics.get("test_bleu")
    scores = f", test BLEU {bleu:.2f}" if isinstance(bleu, int | float) else ""
    return f"step {metrics.get('steps')}{scores}"


def _has(path: Path) -> bool:
    """A file, or a directory with something in it (an empty checkpoints/ holds nothing)."""
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config dict as ``{"model.hidden_size": 256, ...}``."""
    if not isinstance(node, dict):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _under(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == k or key.startswith(k + ".") for k in prefixes)


def schema_defaults(config: dict) -> dict[str, Any]:
    """Flat schema defaults of ``config``'s groups (each group's schema chosen by its ``name``,
    e.g. model.name=rnn -> RNNModelConfig): what an option added after a run was saved means."""
    from ..config import TrainConfig, schema_values, schemas

    defaults = flatten(schema_values(TrainConfig))  # bleu, alignment, ...; the groups follow
    for group, options in schemas().items():
        node = config.get(group)
        name = node.get("name") if isinstance(node, dict) else None
        schema = options.get(name) if name in options else options.get("base")
        if schema is not None:
            defaults.update(flatten(schema_values(schema), group))
    return defaults


def config_diff(
    saved: dict, current: dict, *, only: tuple[str, ...] | None = None, limit: int = 3
) -> str:
    """The differences between a run's saved config and another, in one line ('' if none):
    ``trainer.max_steps: 30 there, 40 here``. :data:`IGNORED_KEYS` are not compared, and with
    ``only`` just the keys under those prefixes. A key only one side has is a difference,
    unless the other side's value is its schema default (an option added by a later version
    of seq2seq, which keeps the old behaviour at its default)."""
    there, here = flatten(saved), flatten(current)
    defaults = schema_defaults(current)

    def differs(key: str) -> bool:
        if key not in there or key not in here:
            present = here if key in here else there
            return key not in defaults or present[key] != defaults[key]
        return there[key] != here[key]

    keys = sorted(
        (
            k
            for k in there.keys() | here.keys()
            if not _under(k, IGNORED_KEYS) and (only is None or _under(k, only)) and differs(k)
        ),
        key=lambda k: (not k.endswith(".name"), k),  # a different model or attention first
    )

    def show(flat: dict, key: str) -> str:
        return json.dumps(flat[key]) if key in flat else "(absent)"

    parts = [f"{k}: {show(there, k)} there, {show(here, k)} here" for k in keys[:limit]]
    if len(keys) > limit:
        parts.append(f"and {len(keys) - limit} more")
    return "; ".join(parts)


def clear_outputs(run_dir: Path, names: tuple[str, ...] = RUN_OUTPUTS) -> None:
    """Remove ``names`` (a failed attempt's outputs, or a replaced run's) from ``run_dir``."""
    for name in names:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def claim(
    run_dir: Path, *, resume: bool, overwrite: bool, config: dict, found: Contents | None = None
) -> Contents:
    """Check that this training may write ``run_dir`` (see the module docstring); clear what a
    failed attempt or, with ``overwrite``, a replaced run left; return what it holds.
    RunDirError when refused. ``found``: what the caller read of the directory and already
    acted on (a sweep job's :class:`Plan`); otherwise the directory is inspected here."""
    contents = found if found is not None else _inspect_or_refuse(run_dir)
    holds = contents.holds
    if holds is Holds.finished and not (resume or overwrite):
        raise RunDirError(
            f"{run_dir} holds a finished run ({contents.detail}); nothing was changed: choose "
            "another hydra.run.dir, add trainer.resume=true to continue it (e.g. with a larger "
            "trainer.max_steps), or trainer.overwrite=true to replace it"
        )
    if holds is Holds.unfinished and not (resume or overwrite):
        raise RunDirError(
            f"{run_dir} holds an unfinished run ({contents.detail}); nothing was changed: add "
            "trainer.resume=true to continue it, or trainer.overwrite=true to replace it"
        )
    if resume and holds in (Holds.finished, Holds.unfinished) and not overwrite:
        check_resumable(run_dir, contents, config)
        return contents
    if overwrite and holds in (Holds.finished, Holds.unfinished):
        log.warning("trainer.overwrite=true: removing the run in %s (%s)", run_dir, contents.detail)
        # what seq2seq-evaluate and seq2seq-export made of the old weights goes too
        clear_outputs(run_dir, (*RUN_OUTPUTS, run_files.EVAL, run_files.EXPORT))
    elif holds is Holds.failed:
        log.info("%s: %s; training from scratch", run_dir, contents.detail)
        clear_outputs(run_dir)
    return contents


def _inspect_or_refuse(run_dir: Path) -> Contents:
    try:
        return inspect(run_dir)
    except RunFileError as err:
        raise RunDirError(
            f"{err}: the directory holds a run this command cannot judge; choose another "
            "hydra.run.dir"
        ) from None


def check_resumable(run_dir: Path, contents: Contents, config: dict) -> None:
    """The checkpoint the run would resume from (the last, else the best) must hold this
    config's model, attention, data and seed: otherwise one line naming the differences,
    before anything is loaded."""
    if contents.unreadable:
        raise RunDirError(f"{contents.unreadable[0]}; nothing was changed")
    if contents.saved is None:
        raise RunDirError(
            f"{run_dir} has {METRICS} but no {LAST} or {run_files.BEST_NAME}: nothing to resume; "
            "add trainer.overwrite=true to replace it"
        )
    diff = config_diff(contents.saved.config, config, only=RESUME_KEYS)
    if diff:
        raise RunDirError(
            f"cannot resume {run_dir}: its {contents.saved.path.name} was trained with other "
            f"settings ({diff}); nothing was changed: resume with the run's model, attention, "
            "data, seed and bleu, or train into another hydra.run.dir"
        )


# --------------------------------------------------------------------------- a sweep job's plan


@dataclass(frozen=True)
class Plan:
    """What a sweep job does with its run directory; ``reason`` says it in one line."""

    action: str  # skip | resume | scratch | refuse
    reason: str
    clear: bool = False  # scratch: remove the outputs of a failed attempt first
    val_bleu: float | None = None  # skip: the finished run's
    found: Contents = field(default_factory=lambda: Contents(Holds.nothing))  # as inspected

    def claims(self) -> Contents:
        """What the directory holds once the plan's clearing is done: what the job's
        :func:`claim` is given, so it does not read the directory again."""
        return Contents(Holds.nothing) if self.clear else self.found


def plan_job(run_dir: Path, config: dict) -> Plan:
    """What a sweep job does with its run directory, given its resolved ``config``:

    - ``skip``: the metrics say finished or diverged, the best checkpoint exists (or, for
      a run that diverged before its first validation, the last) and the run's saved config
      (in the last checkpoint, else the best) is the job's;
    - ``resume``: no result yet, and the last checkpoint holds the job's config (interrupted
      in training or in the final test decoding, or failed after a checkpoint);
    - ``scratch``: nothing there yet, or a failed run without a usable last checkpoint (none,
      or one of another config): its outputs are removed first (``clear``);
    - ``refuse``: the directory holds another run (finished or interrupted, other config),
      or a result whose metrics or checkpoints are unreadable or missing; nothing is touched.
    """
    try:
        found = inspect(run_dir)
    except RunFileError as err:
        return Plan("refuse", f"{err}: remove it or choose another hydra.sweep.dir")
    metrics = found.metrics
    status = metrics.get("status")
    if found.holds is Holds.finished:
        # a run that diverged before its first validation has no best checkpoint, only a last
        if not (run_dir / BEST).is_file() and (
            status == "finished" or not (run_dir / LAST).is_file()
        ):
            return Plan(
                "refuse",
                f"{run_dir} has {METRICS} status {status} but no {BEST}: "
                "remove the directory to train that job again",
                found=found,
            )
        if found.saved is None:
            reason = f"{run_dir}: cannot read the run's config ({found.unreadable[-1]})"
            return Plan("refuse", reason, found=found)
        diff = config_diff(found.saved.config, config)
        if diff:
            return Plan(
                "refuse",
                f"{run_dir} holds a different {status} run ({diff}): "
                "remove it or choose another hydra.sweep.dir",
                found=found,
            )
        return Plan(
            "skip",
            f"{status} before ({_ended_at(metrics)}): skipped",
            val_bleu=metrics.get("val_bleu"),
            found=found,
        )
    failed = status == "failed"
    before = f"failed before ({metrics.get('error', 'no error recorded')})" if failed else ""
    if found.holds is Holds.unfinished:
        if found.saved is None:
            err = found.unreadable[0]
            if failed:
                return Plan(
                    "scratch", f"{before}; {err}: training from scratch", clear=True, found=found
                )
            return Plan("refuse", f"{run_dir}: {err}", found=found)
        diff = config_diff(found.saved.config, config)
        if diff and failed:
            return Plan(
                "scratch",
                f"{before}; its {LAST} is of another config ({diff}): training from scratch",
                clear=True,
                found=found,
            )
        if diff:
            return Plan(
                "refuse",
                f"{run_dir} holds a different unfinished run ({diff}): "
                "remove it or choose another hydra.sweep.dir",
                found=found,
            )
        why = before or "interrupted"
        return Plan("resume", f"{why}: resuming from {LAST} at step {found.step}", found=found)
    if failed:
        return Plan(
            "scratch", f"{before}, no {LAST}: training from scratch", clear=True, found=found
        )
    if any((run_dir / name).exists() for name in RUN_OUTPUTS):
        # killed before its first checkpoint: tb/, vocab/ of that attempt
        return Plan("scratch", f"no {LAST} yet: training from scratch", clear=True, found=found)
    return Plan("scratch", "new", found=found)


def exported_plan(run_dir: Path, config: dict, exported: Path) -> Plan | None:
    """The plan of a job whose summary was exported (``seq2seq-compare --export``) to
    ``exported/<sweep dir name>/<job dir name>``: ``skip`` when it is this job's (its saved
    config is the job's, and this code's commit trained it), ``refuse`` when it holds another
    run or cannot be read; None when there is no summary of a finished or diverged run there.

    A grid built over several sittings and machines commits each finished run's summary; the
    next sitting's sweep, in a fresh checkout of the same commit, goes on with the rest."""
    from ..provenance import code_commit

    summary = exported / run_dir.parent.name / run_dir.name
    try:
        metrics = run_files.read_metrics(summary)
    except RunFileError as err:
        return Plan("refuse", f"{err}: remove it or choose another exported_runs")
    status = metrics.get("status")
    if status not in ENDED:
        return None
    try:
        saved = run_files.read_hydra_config(summary)
    except RunFileError as err:
        return Plan("refuse", f"{summary}: cannot read its {run_files.HYDRA_CONFIG} ({err.reason})")
    diff = config_diff(saved, config)
    if diff:
        return Plan(
            "refuse",
            f"{summary} holds the summary of a different run ({diff}): "
            "remove it or choose another exported_runs",
        )
    commit, trained_by = code_commit(), metrics.get("commit")
    if commit is None or trained_by != commit:
        return Plan(
            "refuse",
            f"{summary} was trained by commit {trained_by}, this code is {commit}: one "
            "comparison is trained by one commit (run the sweep from a checkout of that commit, "
            "or choose another exported_runs)",
        )
    return Plan(
        "skip",
        f"{status}, exported to {summary} ({_ended_at(metrics)}): skipped",
        val_bleu=metrics.get("val_bleu"),
    )


# --------------------------------------------------------------------------- the lock


class RunLock(PidLock):
    """One writer per run directory: ``<run_dir>/.seq2seq.lock`` holds the writer's pid, host
    and start time while it trains. Use as a context manager, or :meth:`acquire`/:meth:`release`."""

    error = RunDirError

    def __init__(self, run_dir: Path) -> None:
        super().__init__(
            Path(run_dir) / LOCK_NAME,
            "{path.parent} is in use: pid {pid} on {host} has trained there since {since} (one "
            "training per run directory); wait for it, or remove {path} if that process is gone",
        )
