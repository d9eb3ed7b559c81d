"""Checkpoints: written atomically, read with ``weights_only=True`` (no arbitrary unpickling).

A checkpoint holds only tensors, numbers, strings, lists and dicts: model and optimizer state,
schedule state, RNG states, step, epoch, position in the epoch, the resolved config and the
sentencepiece model paths.
"""

from __future__ import annotations

import errno
import os
import pickle
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError


def save_checkpoint(
    payload: dict[str, Any],
    path: str | Path,
    *,
    elsewhere: str = "choose another hydra.run.dir=DIR",
) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over ``path``.

    A crash (even ``kill -9``) mid-write leaves the previous file at ``path`` intact. A failed
    write (a full disk) removes the temporary file and raises CheckpointError in one line.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) or (
            isinstance(err, RuntimeError) and _WRITE_FAILED.search(str(err))
        ):
            raise _write_error(path, err, elsewhere) from err
        raise


# torch.save's own words for a short write (a full disk under its zip writer)
_WRITE_FAILED = re.compile(r"PytorchStreamWriter failed|unexpected pos|inline_container|file write")


READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def _write_error(path: Path, err: BaseException, elsewhere: str) -> CheckpointError:
    """One line naming the checkpoint, what failed and the free space of its directory."""
    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    chain, cause = [], err
    while cause is not None and len(chain) < 5:  # torch wraps the OSError of a short write
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    text = str(err)
    codes = {getattr(e, "errno", None) for e in chain}
    if errno.ENOSPC in codes:
        what, advice = "the disk is full", f"free some space or {elsewhere}"
    elif "unexpected pos" in text or "failed writing" in text:
        what = "the disk is full (the write was cut short)"
        advice = f"free some space or {elsewhere}"
    elif codes & set(READ_ONLY):
        strerror = next(e.strerror for e in chain if getattr(e, "errno", None) in READ_ONLY)
        return CheckpointError(
            f"cannot save checkpoint {path}: {path.parent} is not writable ({strerror}); "
            f"{elsewhere}"
        )
    else:
        text = str(err).strip()
        what = f"the write failed: {text.splitlines()[0][:160] if text else type(err).__name__}"
        advice = f"free some space or {elsewhere}"
    return CheckpointError(
        f"cannot save checkpoint {path}: {what} ({free} in {path.parent}); {advice}"
    )


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; CheckpointError with a one-line reason on any failure."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL (\S+) was not an allowed global", str(err))
        what = f" (here {found.group(1)})" if found else ""
        raise CheckpointError(
            f"checkpoint {path} holds objects other than tensors and plain containers{what}, "
            "so it is not loaded: safe (weights_only) loading never runs a pickle's code"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        others = sorted(p.stem for p in path.parent.glob("*.pt") if p.name != path.name)
        advice = (
            f"use another checkpoint of the run (checkpoint=NAME, one of: {', '.join(others)}) "
            "or retrain"
            if others
            else "retrain the run (it has no other checkpoint)"
        )
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({type(err).__name__}); {advice}"
        ) from None
    if not isinstance(payload, dict) or "model" not in payload:
        raise CheckpointError(f"checkpoint {path} is not a seq2seq checkpoint (no model state)")
    return payload


def rng_state() -> dict[str, Any]:
    """This process's generators: the CPU one and its own GPU's (not every GPU's: under DDP each
    rank saves and restores the GPU it trains on)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda_device"] = torch.cuda.get_rng_state()  # the current device's
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`'s states into this process. The tensors may come from any
    device (they are moved to the CPU, where torch wants them); a checkpoint from a machine
    with GPUs loads on one without, and on fewer GPUs than it was saved with."""
    torch.set_rng_state(state["torch"].cpu())
    if not torch.cuda.is_available():
        return
    if "cuda_device" in state:
        torch.cuda.set_rng_state(state["cuda_device"].cpu())
    elif "cuda" in state:  # older checkpoints: every GPU's state, from rank 0's process
        saved = state["cuda"]
        index = torch.cuda.current_device()
        if index < len(saved):
            torch.cuda.set_rng_state(saved[index].cpu())


def rank_rng_state(saved: dict[str, Any], rank: int) -> dict[str, Any] | None:
    """Rank ``rank``'s generator states in a checkpoint's ``rng`` entry: its own where the run
    saved one per rank (``ranks``), rank 0's top-level states for rank 0, None for a rank the
    checkpoint has none for (a resume on more processes than saved it: that rank keeps its own
    seeded stream)."""
    ranks = saved.get("ranks")
    if ranks:
        return ranks[rank] if rank < len(ranks) else None
    return saved if rank == 0 else None


STEP_PREFIX = "step_"  # checkpoints/step_<N>.pt: the weights at validation step N


def step_checkpoints(ckpt_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of ``ckpt_dir/step_<N>.pt``, oldest first."""
    found = []
    for path in Path(ckpt_dir).glob(f"{STEP_PREFIX}*.pt"):
        number = path.stem[len(STEP_PREFIX) :]
        if number.isdigit():
            found.append((int(number), path))
    return sorted(found)


def average_checkpoints(paths: list[Path]) -> dict[str, Any]:
    """The mean of the checkpoints' model weights (floating tensors; other tensors from the
    newest), with the newest one's config, vocabulary and progress: checkpoint averaging
    (Vaswani et al. 2017; fairseq's average_checkpoints.py)."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    payloads = [load_checkpoint(path) for path in paths]
    newest = payloads[-1]
    averaged = {}
    for key, tensor in newest["model"].items():
        for path, payload in zip(paths, payloads, strict=True):
            other = payload["model"].get(key)
            if other is None or other.shape != tensor.shape:
                raise CheckpointError(
                    f"cannot average {path}: its weight {key} differs from {paths[-1]}'s"
                )
        if tensor.is_floating_point():
            stacked = torch.stack([p["model"][key].double() for p in payloads])
            averaged[key] = stacked.mean(dim=0).to(tensor.dtype)
        else:
            averaged[key] = tensor.clone()
    return {
        key: newest[key] for key in ("config", "spm", "vocab_sizes", "progress") if key in newest
    } | {"model": averaged, "averaged": [str(path.name) for path in paths]}
