"""A run directory is the user's data: what it holds, one writer at a time, and the claim a
training makes on it before it writes anything.

- :func:`inspect`: nothing yet, a failed start, an unfinished run (``checkpoints/last.pt``) or
  a finished one (``metrics.json`` status finished or diverged).
- :class:`RunLock`: ``.seq2seq.lock`` (pid, host, start time); a lock left by a dead process of
  this host is taken over with a warning.
- :func:`claim`: refuses, in one line and changing nothing, to train into a finished run
  (unless ``trainer.resume=true`` continues it or ``trainer.overwrite=true`` replaces it), into
  an unfinished run without either, or to resume a checkpoint of another model, attention,
  data or seed; clears a failed attempt's outputs.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, ConfigError
from ..staging import PidLock

log = logging.getLogger("seq2seq.train")

LOCK_NAME = ".seq2seq.lock"
# what a run directory holds besides its records (.hydra/, the Hydra log): removed before a
# failed run is trained again from scratch, so nothing of the failed attempt mixes in
RUN_OUTPUTS = ("checkpoints", "history.jsonl", "metrics.json", "tb", "hyps", "alignments", "vocab")
RUN_OUTPUTS += ("wandb", "mlruns")  # logger=wandb|mlflow
ENDED = ("finished", "diverged")  # metrics.json statuses of a run with results
# what a resumed run must share with its checkpoint: the model, what it reads, batch order,
# and the BLEU that picks best.pt (one scale across the run's validations)
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
    failed = "failed"  # a failed start's metrics.json or outputs, no checkpoints/last.pt
    unfinished = "unfinished"  # checkpoints/last.pt, no final metrics: interrupted or running
    finished = "finished"  # metrics.json status finished or diverged


@dataclass(frozen=True)
class Contents:
    holds: Holds
    detail: str = ""  # e.g. "status finished at step 200, test BLEU 31.20"
    step: int | None = None


def read_metrics(run_dir: Path) -> dict:
    """metrics.json as a dict ({} when absent); CheckpointError when it cannot be read."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return {}
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise RunDirError(
            f"{path} cannot be read ({err}): the directory holds a run this command cannot "
            "judge; choose another hydra.run.dir"
        ) from None
    return metrics if isinstance(metrics, dict) else {}


def inspect(run_dir: Path) -> Contents:
    """What ``run_dir`` holds (see :class:`Holds`)."""
    metrics = read_metrics(run_dir)
    status = metrics.get("status")
    last = run_dir / "checkpoints" / "last.pt"
    if status in ENDED:
        bleu = metrics.get("test_bleu")
        scores = f", test BLEU {bleu:.2f}" if isinstance(bleu, int | float) else ""
        return Contents(
            Holds.finished,
            f"status {status} at step {metrics.get('steps')}{scores}",
            metrics.get("steps"),
        )
    if last.is_file():
        try:
            _, step = saved_config(last)
        except CheckpointError:
            step = None
        where = f"checkpoints/last.pt at step {step}" if step is not None else "checkpoints/last.pt"
        return Contents(Holds.unfinished, where, step)
    if status == "failed" or any(_has(run_dir / name) for name in RUN_OUTPUTS):
        return Contents(Holds.failed, f"failed before ({metrics.get('error', 'no checkpoint')})")
    return Contents(Holds.nothing)


def _has(path: Path) -> bool:
    """A file, or a directory with something in it (an empty checkpoints/ holds nothing)."""
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def saved_config(path: Path) -> tuple[dict, int | None]:
    """The config and step stored in a checkpoint, read without loading its tensors
    (``mmap``); CheckpointError in one line when it cannot be read."""
    import torch

    from ..checkpoint import load_checkpoint

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - load_checkpoint names the reason in one line
        payload = load_checkpoint(path)
    config = payload.get("config") if isinstance(payload, dict) else None
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint {path} holds no run config")
    progress = payload.get("progress")
    return config, progress.get("step") if isinstance(progress, dict) else None


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


def claim(run_dir: Path, *, resume: bool, overwrite: bool, config: dict) -> Contents:
    """Check that this training may write ``run_dir`` (see the module docstring); clear what a
    failed attempt or, with ``overwrite``, a replaced run left. RunDirError when refused."""
    contents = inspect(run_dir)
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
        check_resumable(run_dir, config)
        return contents
    if overwrite and holds in (Holds.finished, Holds.unfinished):
        log.warning("trainer.overwrite=true: removing the run in %s (%s)", run_dir, contents.detail)
        # what seq2seq-evaluate and seq2seq-export made of the old weights goes too
        clear_outputs(run_dir, (*RUN_OUTPUTS, "eval", "export"))
    elif holds is Holds.failed:
        log.info("%s: %s; training from scratch", run_dir, contents.detail)
        clear_outputs(run_dir)
    return contents


def check_resumable(run_dir: Path, config: dict) -> None:
    """``checkpoints/last.pt`` (else best.pt) must hold this config's model, attention, data
    and seed: otherwise one line naming the differences, before anything is loaded."""
    ckpt = run_dir / "checkpoints"
    path = next((p for p in (ckpt / "last.pt", ckpt / "best.pt") if p.is_file()), None)
    if path is None:
        raise RunDirError(
            f"{run_dir} has metrics.json but no checkpoints/last.pt or best.pt: nothing to resume; "
            "add trainer.overwrite=true to replace it"
        )
    try:
        saved, _ = saved_config(path)
    except CheckpointError as err:
        raise RunDirError(f"{err}; nothing was changed") from None
    diff = config_diff(saved, config, only=RESUME_KEYS)
    if diff:
        raise RunDirError(
            f"cannot resume {run_dir}: its {path.name} was trained with other settings ({diff}); "
            "nothing was changed: resume with the run's model, attention, data, seed and bleu, or "
            "train into another hydra.run.dir"
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
