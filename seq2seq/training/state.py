"""Where a training run stands, why it stopped, and how that is saved and restored.

- :class:`Progress`: counters and validation history, saved in every checkpoint.
- :class:`StopReason` / :class:`Stop`: why :func:`seq2seq.training.loop.fit` returned.
- :class:`StopRequested`: SIGINT/SIGTERM set a flag that the loop reads between steps;
  :func:`raise_on_signal`: they raise :class:`Interrupted` (the final test).
- :func:`checkpoint_payload` / :func:`restore`: the training state <-> a checkpoint dict.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from .. import interrupts as _interrupts
from ..checkpoint import rank_rng_state, rng_state, set_rng_state
from ..errors import CheckpointError


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # current epoch (0-based)
    batch_in_epoch: int = 0  # batches of `epoch` already consumed
    train_time: float = 0.0  # seconds spent in the training phase, across resumes
    step_time: float = 0.0  # seconds inside optimizer steps only (throughput), across resumes
    train_tokens: int = 0  # real target tokens seen
    best_bleu: float = -1.0
    best_step: int = 0
    bad_validations: int = 0  # validations since the last gain of trainer.min_delta (patience)
    # the value of trainer.stop_on's metric (val BLEU or val loss) that last reset bad_validations
    patience_ref: float | None = None
    skipped_steps: int = 0  # non-finite losses skipped
    history: list[dict] = field(default_factory=list)  # one entry per validation
    # why training ended (a StopReason value), kept for a run resumed in its final test: a
    # diverged run must not train on; None while training or after an interrupt
    ended: str | None = None

    def validated(self, bleu: float, loss: float, *, stop_on: str, min_delta: float) -> bool:
        """Count a validation at the current step: the best checkpoint follows every BLEU gain (returns
        whether this is one); the patience count resets only when ``stop_on``'s metric (``bleu``
        up, or ``loss`` down) gains at least ``min_delta`` on the value that reset it last, so
        slow creeping gains add up and noise does not."""
        improved = bleu > self.best_bleu
        if improved:
            self.best_bleu, self.best_step = bleu, self.step
        value, sign = (loss, -1.0) if stop_on == "loss" else (bleu, 1.0)
        gain = None if self.patience_ref is None else sign * (value - self.patience_ref)
        if gain is None or (gain > 0 and gain >= min_delta):
            self.patience_ref, self.bad_validations = value, 0
        else:
            self.bad_validations += 1
        return improved


class StopReason(str, Enum):
    """Why training ended. ``diverged`` and ``interrupted`` are not a finished run."""

    max_steps = "max_steps"
    max_epochs = "max_epochs"
    max_time = "max_time"
    early_stopping = "early_stopping"
    diverged = "diverged"  # trainer.max_bad_steps non-finite losses in a row
    interrupted = "interrupted"  # SIGINT or SIGTERM


@dataclass(frozen=True)
class Stop:
    """A :class:`StopReason` with the words that say it to a user (the run metrics'
    ``stop_reason``, e.g. ``max_steps=20``)."""

    reason: StopReason
    detail: str
    signum: int | None = None  # interrupted: the signal

    def __str__(self) -> str:
        return self.detail


def budget_stop(trainer_cfg: Any, progress: Progress, *, clock: bool = True) -> Stop | None:
    """The budget (trainer.max_steps / max_epochs / max_time) that ``progress`` has reached.

    ``clock=False`` leaves max_time out: inside the loop each rank's own clock would split DDP
    ranks, so the time is decided by the step's vote (:class:`~.loop.StopVote`) instead. The
    saved ``train_time`` of a resumed run is the same on every rank."""
    t, p = trainer_cfg, progress
    if t.max_steps is not None and p.step >= t.max_steps:
        return Stop(StopReason.max_steps, f"max_steps={t.max_steps}")
    if t.max_epochs is not None and p.epoch >= t.max_epochs:
        return Stop(StopReason.max_epochs, f"max_epochs={t.max_epochs}")
    if clock and t.max_time is not None and p.train_time >= t.max_time:
        return time_stop(t)
    return None


def time_stop(trainer_cfg: Any) -> Stop:
    return Stop(StopReason.max_time, f"max_time={trainer_cfg.max_time}s")


def diverged_stop(bad_steps: int) -> Stop:
    return Stop(
        StopReason.diverged,
        f"{bad_steps} consecutive non-finite losses (lower optim.lr or use fp32)",
    )


def early_stop(patience: int, *, stop_on: str = "bleu", min_delta: float = 0.0) -> Stop:
    gain = "val loss drop" if stop_on == "loss" else "BLEU gain"
    size = f" of {min_delta:g}" if min_delta > 0 else ""
    return Stop(
        StopReason.early_stopping,
        f"early stopping (no {gain}{size} in {patience} validations)",
    )


CAPS = (StopReason.max_steps, StopReason.max_epochs, StopReason.max_time)


def converged(stop: Stop, patience: int | None) -> bool | None:
    """Whether the run ended at convergence: True when the convergence rule (``trainer.patience``
    validations without a gain of ``trainer.min_delta`` in ``trainer.stop_on``) stopped it; False when a cap
    (max_steps, max_epochs, max_time) or divergence ended it first; None when no rule was set
    (``trainer.patience=null``: the run was never meant to converge)."""
    if stop.reason is StopReason.early_stopping:
        return True
    if patience is None and stop.reason in CAPS:
        return None
    return False


def signal_stop(signum: int) -> Stop:
    return Stop(StopReason.interrupted, f"signal {signal.Signals(signum).name}", signum)


# one interrupt rule for every command: the neutral home (seq2seq.interrupts)
Interrupted = _interrupts.Interrupted
raise_on_signal = _interrupts.signals_raise


class StopRequested:
    """SIGINT/SIGTERM set a flag; the loop saves the last checkpoint at the next step and exits."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequested:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no signal handling
                pass
        return self

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        if self.signal is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------- checkpoints


def checkpoint_payload(
    *,
    model,
    optimizer,
    schedule,
    scaler,
    progress: Progress,
    config: dict,
    vocab: dict,
    rank_rng: list[dict] | None = None,
) -> dict:
    """The training state as a checkpoint dict (tensors, numbers, strings, lists, dicts only).
    ``vocab``: ``spm`` (sentencepiece paths relative to the run directory) and ``vocab_sizes``;
    ``rank_rng``: under DDP, every rank's generator states (``rng["ranks"]``), so that a resume
    gives each rank its own stream back."""
    rng = rng_state()
    if rank_rng:
        rng["ranks"] = [rng, *rank_rng[1:]]  # rank 0's as it is now, after its validation
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": rng,
        "progress": progress.__dict__ | {"history": list(progress.history)},
        "config": config,
        "spm": vocab["spm"],
        "vocab_sizes": vocab["vocab_sizes"],
    }


def restore(payload: dict, *, model, optimizer, schedule, scaler, rank: int = 0) -> Progress:
    """Load a checkpoint dict (loaded onto the CPU) into the parts; return its
    :class:`Progress`. DDP rank ``rank`` gets its own generator states back."""
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    schedule.load_state_dict(payload["schedule"])
    scaler.load_state_dict(payload["scaler"])
    rng = rank_rng_state(payload["rng"], rank)
    if rng is not None:
        set_rng_state(rng)
    return Progress(**payload["progress"])


def check_compatible(payload: dict, model_family: str, vocab_sizes: tuple[int, int]) -> None:
    """A checkpoint must come from the same model family and vocabulary as the config."""
    saved = payload.get("config", {})
    family = saved.get("model", {}).get("name")
    if family != model_family:
        raise CheckpointError(
            f"checkpoint holds a {family!r} model but the config asks for model={model_family}"
        )
    sizes = payload.get("vocab_sizes", {})
    if sizes and (sizes.get("src"), sizes.get("tgt")) != tuple(vocab_sizes):
        raise CheckpointError(
            f"checkpoint vocabulary {sizes.get('src')}/{sizes.get('tgt')} differs from the data's "
            f"{vocab_sizes[0]}/{vocab_sizes[1]}: use the same data.vocab settings"
        )


def rewrite_history(path: Path, history: list[dict]) -> None:
    """Make the history file the checkpoint's validations: a kill between appending a line and
    saving the last checkpoint left lines that training now redoes (they would appear twice)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(entry) + "\n" for entry in history), encoding="utf-8")
    tmp.replace(path)
