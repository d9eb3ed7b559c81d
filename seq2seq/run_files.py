"""The run directory's files: their names, one reader per file, one error policy, and the one
writer of ``metrics.json``.

Every part that reads or writes a run directory (training, the sweep, evaluation, the
comparison and its export) takes the names from here, so renaming a file is one edit. An
evaluation's directory (``eval/<name>/``) holds a ``metrics.json`` of its own, read and written
by the same functions.

The error policy: a file that is absent reads as empty (``{}``, ``[]``); a file that is there
but cannot be read raises :class:`RunFileError` (or, for a checkpoint,
:class:`~seq2seq.errors.CheckpointError`) in one line naming the file and the reason. What
to do about it (refuse the directory, list the run as broken) is the caller's decision.
Callers use the readers as ``run_files.read_...`` (not imported by name): a test counts the
reads of a resumed sweep job by wrapping them here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import CheckpointError, Seq2SeqError

# paths relative to a run directory (``run_dir / METRICS``); messages name them the same way
HYDRA = ".hydra"  # Hydra's records of the job that made the run
HYDRA_RECORDS = ("config.yaml", "hydra.yaml", "overrides.yaml")
HYDRA_CONFIG = f"{HYDRA}/config.yaml"  # the resolved config the run was trained with
HYDRA_OVERRIDES = f"{HYDRA}/overrides.yaml"  # the command line's overrides
METRICS = "metrics.json"  # the run's result (or failure), one JSON object
HISTORY = "history.jsonl"  # one JSON object per validation
CHECKPOINTS = "checkpoints"
LAST_NAME, BEST_NAME = "last.pt", "best.pt"  # file names inside CHECKPOINTS
LAST = f"{CHECKPOINTS}/{LAST_NAME}"  # every validation's state: what a resume continues
BEST = f"{CHECKPOINTS}/{BEST_NAME}"  # the best validation BLEU's weights: what is tested
ALIGNMENTS = "alignments"  # <name>.npz (key str(i): sentence i's matrix), .jsonl, .pharaoh
TEST = "test"  # the name the end of training dumps the test set's alignments under
TEST_ALIGNMENTS = f"{ALIGNMENTS}/{TEST}.npz"  # the test set's attention matrices
TEST_ALIGNMENT_INDEX = f"{ALIGNMENTS}/{TEST}.jsonl"  # their sentences' pieces
# what an exported summary keeps of the full dump: the diagnostics of every test sentence
TEST_DIAGNOSTICS = f"{ALIGNMENTS}/{TEST}.diagnostics.json"
HYPS = "hyps"  # the final test: what was decoded and what it was scored against, line by line
TEST_HYPS, TEST_SOURCES, TEST_REFERENCES = (
    f"{HYPS}/{TEST}.txt",
    f"{HYPS}/{TEST}.src.txt",
    f"{HYPS}/{TEST}.ref.txt",
)
EVAL = "eval"  # eval/<name>/: one seq2seq-evaluate record (EVAL_HYPS, metrics.json, ...)
EVAL_HYPS, EVAL_NBEST = "hyps.txt", "hyps.nbest.txt"  # an evaluation's decoded lines
EXPORT = "export"  # seq2seq-export's model directories
VOCAB = "vocab"  # the run's sentencepiece model(s): the run is self-contained
TENSORBOARD, WANDB, MLRUNS = "tb", "wandb", "mlruns"  # what logger= writes
# what a training writes besides its records (.hydra/, the Hydra log): removed before a failed
# run is trained again from scratch, so nothing of the failed attempt mixes in
RUN_OUTPUTS = (CHECKPOINTS, HISTORY, METRICS, TENSORBOARD, HYPS, ALIGNMENTS, VOCAB, WANDB, MLRUNS)


class RunFileError(Seq2SeqError):
    """A run file that exists but cannot be read; ``reason`` is the why, in one line."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path} cannot be read ({reason})")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def read_metrics(directory: Path) -> dict:
    """``directory/metrics.json`` (a run's or an evaluation's) as a dict; ``{}`` when absent."""
    path = Path(directory) / METRICS
    if not path.is_file():
        return {}
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise RunFileError(path, _first_line(err)) from None
    if not isinstance(metrics, dict):
        raise RunFileError(path, "not a JSON object")
    return metrics


def write_metrics(directory: Path, metrics: dict) -> None:
    """``directory/metrics.json``, atomically: a kill while writing leaves the previous file."""
    path = Path(directory) / METRICS
    tmp = path.with_name(f".{METRICS}.tmp")
    tmp.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_hydra_config(run_dir: Path) -> dict:
    """``.hydra/config.yaml``, the config the run was trained with, unresolved; ``{}`` when
    absent."""
    from omegaconf import OmegaConf

    path = Path(run_dir) / HYDRA_CONFIG
    if not path.is_file():
        return {}
    try:
        config = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as err:  # noqa: BLE001 - YAML, OmegaConf and OS errors alike
        raise RunFileError(path, _first_line(err)) from None
    if not isinstance(config, dict):
        raise RunFileError(path, "not a mapping")
    return config


def read_history(run_dir: Path) -> list[dict]:
    """``history.jsonl``'s validations in order; ``[]`` when absent."""
    path = Path(run_dir) / HISTORY
    if not path.is_file():
        return []
    history = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise RunFileError(path, _first_line(err)) from None
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as err:
            raise RunFileError(path, f"line {line_no}: {_first_line(err)}") from None
        if not isinstance(entry, dict):
            raise RunFileError(path, f"line {line_no}: not a JSON object")
        history.append(entry)
    return history


@dataclass(frozen=True)
class CheckpointHeader:
    """What a checkpoint says about its run, without its tensors: the resolved config it was
    trained with and its progress (step, epoch, validations)."""

    path: Path
    config: dict
    progress: dict

    @property
    def step(self) -> int | None:
        return self.progress.get("step")


def read_checkpoint_header(path: Path) -> CheckpointHeader:
    """The config and progress stored in a checkpoint, read without loading its tensors
    (``mmap``); CheckpointError in one line when it cannot be read."""
    import torch

    from .checkpoint import load_checkpoint

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - load_checkpoint names the reason in one line
        payload = load_checkpoint(path)
    config = payload.get("config") if isinstance(payload, dict) else None
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint {path} holds no run config")
    progress = payload.get("progress")
    return CheckpointHeader(Path(path), config, progress if isinstance(progress, dict) else {})
