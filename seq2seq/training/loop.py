"""The training loop: optimizer steps within a budget, validation, checkpoints, signals.

:func:`fit` is a plain function of the parts (:class:`~seq2seq.training.setup.TrainingParts`)
and the trainer/optim/decode config nodes; it returns why it stopped (a
:class:`~seq2seq.training.state.Stop`). :func:`seq2seq.training.recipe.train` builds the parts,
calls it, then tests the best checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import time
from typing import Any

import torch

from ..checkpoint import STEP_PREFIX, load_checkpoint, rng_state, save_checkpoint, step_checkpoints
from ..config import option_value
from ..errors import PeerFailed, one_line
from ..progress import progress_bar
from ..run_files import BEST_NAME, HISTORY, LAST_NAME
from ..runtime import DistInfo, autocast, broadcast_flag
from .loss import output_losses, real_positions
from .setup import TrainingParts
from .state import (
    Progress,
    Stop,
    StopReason,
    StopRequested,
    budget_stop,
    check_compatible,
    checkpoint_payload,
    diverged_stop,
    early_stop,
    restore,
    rewrite_history,
    signal_stop,
    time_stop,
)
from .validate import validate

log = logging.getLogger("seq2seq.train")


# --------------------------------------------------------------------------- checkpoints


WEIGHTS_ONLY = ("model", "progress", "config", "spm", "vocab_sizes")  # no optimizer state


def save(
    parts: TrainingParts,
    progress: Progress,
    name: str,
    keys: tuple | None = None,
    rank_rng: list[dict] | None = None,
) -> None:
    """``checkpoints/<name>`` from the main process, written atomically (``keys``: only those
    entries of the payload; ``rank_rng``: every DDP rank's generator states, from
    :func:`gather_rng_states`)."""
    if parts.runtime.dist.is_main:
        payload = checkpoint_payload(
            model=parts.model,
            optimizer=parts.optimizer,
            schedule=parts.schedule,
            scaler=parts.scaler,
            progress=progress,
            config=parts.config,
            vocab=parts.vocab,
            rank_rng=rank_rng,
        )
        if keys is not None:
            payload = {key: payload[key] for key in keys}
        save_checkpoint(payload, parts.ckpt_dir / name)


def gather_rng_states(dist: DistInfo) -> list[dict] | None:
    """Every DDP rank's generator states, on rank 0 (a collective: every rank calls it); None
    in a single process."""
    if not dist.enabled:
        return None
    states = [None] * dist.world_size if dist.is_main else None
    torch.distributed.gather_object(rng_state(), states, dst=0)
    return states


def resume(parts: TrainingParts, model_family: str) -> Progress:
    """The progress of the last checkpoint, loaded into the parts; a fresh Progress when
    there is none yet (``trainer.resume=true`` on a new directory starts from scratch).

    The checkpoint is read onto the CPU whatever the device (the generator states must be CPU
    tensors; the weights are copied to the model's device as they load), and each DDP rank
    takes its own generator states, also when resuming on fewer (or more) processes."""
    path = parts.ckpt_dir / LAST_NAME
    if not path.is_file():
        log.info("trainer.resume=true but %s does not exist: starting from scratch", path)
        return Progress()
    payload = load_checkpoint(path, map_location="cpu")
    sizes = parts.vocab["vocab_sizes"]
    check_compatible(payload, model_family, (sizes["src"], sizes["tgt"]))
    progress = restore(
        payload,
        model=parts.model,
        optimizer=parts.optimizer,
        schedule=parts.schedule,
        scaler=parts.scaler,
        rank=parts.runtime.dist.rank,
    )
    if parts.runtime.dist.is_main:
        rewrite_history(parts.run_dir / HISTORY, progress.history)
    parts.schedule.step(progress.step + 1)  # the lr of the next step, as in fit()
    log.info("resumed from %s at step %d (epoch %d)", path, progress.step, progress.epoch)
    return progress


def keep_weights(parts: TrainingParts, progress: Progress, keep_last: int) -> None:
    """``checkpoints/step_<N>.pt`` (weights, config, vocabulary: what evaluation and
    seq2seq-average need, no optimizer state); only the newest ``keep_last`` are kept."""
    if not parts.runtime.dist.is_main:
        return
    save(parts, progress, f"{STEP_PREFIX}{progress.step}.pt", keys=WEIGHTS_ONLY)
    for _, old in step_checkpoints(parts.ckpt_dir)[:-keep_last]:
        old.unlink(missing_ok=True)


# --------------------------------------------------------------------------- one step


class StopVote:
    """The stop decision of one optimizer step, the same on every DDP rank.

    Each rank has its own reasons to stop: a non-finite loss, SIGINT/SIGTERM received, its own
    clock past ``trainer.max_time``. Acted on alone, they split the ranks (one leaves the loop
    for rank 0's checkpoint broadcast while another enters the next step's gradient all-reduce,
    and both wait forever). So every step puts them in one small, reused int tensor, reduces it
    once (MAX: any rank's reason is every rank's), and every rank reads the same verdict.
    The loss sum is read in the same host transfer.
    """

    def __init__(self, dist: DistInfo, signals=None) -> None:
        self.dist = dist
        self.signals = signals  # a StopRequested, or None
        self.deadline: float | None = None  # time.perf_counter() at which max_time is reached
        self.flags = torch.zeros(3, dtype=torch.int32, device=dist.device)
        self.nonfinite = self.signal = self.time_up = False

    def decide(self, nonfinite: torch.Tensor, loss_sum: torch.Tensor) -> float:
        """Vote (``nonfinite``: a bool tensor on the training device) and return the loss sum."""
        flags = self.flags
        flags[0] = nonfinite.to(flags.device, torch.int32)
        flags[1] = int(self.signals is not None and self.signals.signal is not None)
        flags[2] = int(self.deadline is not None and time.perf_counter() >= self.deadline)
        if self.dist.enabled:
            torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
        values = torch.cat([flags.to(loss_sum.device, torch.float64), loss_sum.double().view(1)])
        *verdict, loss = values.tolist()  # the step's one host sync
        self.nonfinite, self.signal, self.time_up = (bool(v) for v in verdict)
        return loss


def train_step(
    parts: TrainingParts,
    batches: list,
    *,
    label_smoothing: float,
    clip_grad_norm: float,
    vote: StopVote | None = None,
) -> tuple[float, int, torch.Tensor | None]:
    """One optimizer step over ``batches`` (gradient accumulation); returns loss/token,
    tokens, grad norm (a 0-dim tensor on the training device, so that reading it is the
    caller's choice and not a host sync per step; None when the step was skipped: a
    non-finite loss on any rank, or an fp16 step whose gradients overflowed, which the
    GradScaler does not apply).

    ``vote`` (:class:`StopVote`) takes this step's stop decision with the other ranks; it holds
    the verdict afterwards (``vote.signal``, ``vote.time_up``, ``vote.nonfinite``).

    The objective is the (label-smoothed) loss plus the model's ``out.aux_loss`` of the
    per-token NLLs when its output has one; the returned loss is the first alone."""
    model, train_model, runtime = parts.model, parts.train_model, parts.runtime
    dist = runtime.dist
    vote = vote or StopVote(dist)
    train_model.train()
    loss_sum = torch.zeros((), device=runtime.device)
    nonfinite = torch.zeros((), dtype=torch.bool, device=runtime.device)
    total_tokens = 0
    for i, batch in enumerate(batches):
        tokens = batch.num_tgt_tokens  # counted on the CPU batch: no device sync
        positions = real_positions(batch.tgt_out).to(runtime.device, non_blocking=True)
        batch = batch.to(runtime.device, non_blocking=True)
        sync = i == len(batches) - 1 or not dist.enabled
        ctx = train_model.no_sync() if not sync and dist.enabled else contextlib.nullcontext()
        with ctx:
            with autocast(runtime.device, runtime.amp_dtype):
                out = train_model(
                    batch.src, batch.src_mask, batch.tgt_in, batch.tgt_mask, features_only=True
                )
                losses = output_losses(
                    out.features,
                    model.output_layer,
                    batch.tgt_out,
                    label_smoothing=label_smoothing,
                    per_token=out.aux_loss is not None,
                    positions=positions,
                )
                loss = objective = losses[0]
                if out.aux_loss is not None:  # the model's own extra term, given the NLLs
                    objective = loss + out.aux_loss(losses[2])
            # mean over tokens per batch, then over batches: matches DDP's gradient averaging
            scaled = objective / max(tokens, 1) / len(batches)
            nonfinite |= ~torch.isfinite(scaled.detach())
            parts.scaler.scale(scaled).backward()
        loss_sum += loss.detach().float()
        total_tokens += tokens
    total_loss = vote.decide(nonfinite, loss_sum)
    if vote.nonfinite:
        parts.optimizer.zero_grad(set_to_none=True)
        return float("nan"), total_tokens, None
    scaler = parts.scaler
    scaler.unscale_(parts.optimizer)
    params = [p for p in model.parameters() if p.grad is not None]
    max_norm = clip_grad_norm if clip_grad_norm > 0 else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    scale = scaler.get_scale() if scaler.is_enabled() else None
    scaler.step(parts.optimizer)
    scaler.update()
    parts.optimizer.zero_grad(set_to_none=True)
    if scale is not None and scaler.get_scale() < scale:  # overflow: the scaler skipped it
        return total_loss / max(total_tokens, 1), total_tokens, None
    # the norm stays on the device (a 0-dim tensor): read only when a log line needs it
    return total_loss / max(total_tokens, 1), total_tokens, grad_norm.detach()


# --------------------------------------------------------------------------- validation


def validate_and_checkpoint(
    parts: TrainingParts, progress: Progress, *, trainer_cfg: Any, decode: Any, max_tokens: int
) -> None:
    """Rank 0 validates, appends to the history, logs, saves the best checkpoint on a BLEU gain
    and the last one; the other ranks wait and receive the early-stopping and plateau state, or rank 0's
    failure (a validation error, a full disk), which they raise too (:class:`PeerFailed`)
    instead of waiting for a broadcast that never comes."""
    p, runtime = progress, parts.runtime
    rank_rng = gather_rng_states(runtime.dist)  # every rank's generators, into the last checkpoint
    failure: BaseException | None = None
    if runtime.dist.is_main:
        try:
            _validate_and_save(parts, p, rank_rng, trainer_cfg, decode, max_tokens)
        except BaseException as err:  # noqa: BLE001 - told to the other ranks, then raised
            failure = err
    if runtime.dist.enabled:
        # every rank keeps the same early-stopping and plateau state
        state = [
            None if failure is None else one_line(failure),
            p.bad_validations,
            p.best_step,
            p.patience_ref,
            parts.schedule.state_dict(),
        ]
        torch.distributed.broadcast_object_list(state, src=0)
        if failure is None and state[0] is not None:
            raise PeerFailed(f"rank 0 failed at step {p.step}: {state[0]}")
        if failure is None:
            p.bad_validations, p.best_step, p.patience_ref = state[1:4]
            parts.schedule.load_state_dict(state[4])
            parts.schedule.step(p.step + 1)
    if failure is not None:
        raise failure


def _validate_and_save(parts, p: Progress, rank_rng, trainer_cfg, decode, max_tokens) -> None:
    """Rank 0's part of :func:`validate_and_checkpoint`."""
    t0 = time.perf_counter()
    scores = validate(
        parts, step=p.step, decode=decode, trainer_cfg=trainer_cfg, max_tokens=max_tokens
    )
    improved = p.validated(
        scores["val_bleu"],
        scores["val_loss"],
        stop_on=option_value(trainer_cfg.stop_on),
        min_delta=trainer_cfg.min_delta,
    )
    parts.schedule.validated(scores["val_bleu"])
    entry = {
        "step": p.step,
        "epoch": p.epoch,
        "train_time": round(p.train_time, 2),
        "val_loss": round(scores["val_loss"], 4),
        "val_ppl": round(scores["val_ppl"], 2),
        "val_bleu": scores["val_bleu"],
        "val_chrf": scores["val_chrf"],
        "lr": parts.schedule.lr,
        "val_time": round(time.perf_counter() - t0, 2),  # what validating costs
    }
    p.history.append(entry)
    with open(parts.run_dir / HISTORY, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
    keys = ("val_loss", "val_ppl", "val_bleu", "val_chrf")
    parts.logger.scalars({f"valid/{key[4:]}": entry[key] for key in keys}, p.step)
    parts.logger.flush()
    if improved:
        save(parts, p, BEST_NAME, rank_rng=rank_rng)
    save(parts, p, LAST_NAME, rank_rng=rank_rng)
    if trainer_cfg.keep_last > 0:
        keep_weights(parts, p, trainer_cfg.keep_last)
    log.info(
        "validation at step %d: loss %.3f ppl %.2f BLEU %.2f chrF %.2f%s (%.1fs)",
        p.step,
        entry["val_loss"],
        entry["val_ppl"],
        entry["val_bleu"],
        entry["val_chrf"],
        " *best*" if improved else "",
        time.perf_counter() - t0,
    )


# --------------------------------------------------------------------------- the loop


def fit(
    parts: TrainingParts,
    progress: Progress,
    *,
    trainer_cfg: Any,
    optim_cfg: Any,
    decode: Any,
    max_tokens: int,
) -> Stop:
    """Train until a budget, early stopping, divergence or a signal; return why it stopped.

    Validates every ``trainer.val_every`` steps and once more at the end (so the best
    checkpoint reflects the final state), and always leaves the last one for resuming.
    """
    tcfg, p, dist = trainer_cfg, progress, parts.runtime.dist
    accumulate = optim_cfg.accumulate
    step_options = {
        "label_smoothing": tcfg.label_smoothing,
        "clip_grad_norm": optim_cfg.clip_grad_norm,
    }
    validation = {"trainer_cfg": tcfg, "decode": decode, "max_tokens": max_tokens}
    bar = progress_bar(
        tcfg.max_steps,
        None if dist.is_main else False,
        desc="training",
        unit="step",
        initial=p.step,
        leave=True,
    )
    window = _Window()
    bad_steps = 0
    # a resumed run that had ended (e.g. interrupted in its final test) ends again
    stop = budget_stop(tcfg, p) or _patience_stop(tcfg, p) or _diverged_before(p)
    with StopRequested() as signals:
        vote = StopVote(dist, signals)
        while stop is None:
            batches_of_epoch = parts.plan.num_batches(p.epoch)
            pending: list = []
            for batch in parts.plan.epoch(p.epoch, start=p.batch_in_epoch):
                pending.append(batch)
                p.batch_in_epoch += 1
                if len(pending) < accumulate and p.batch_in_epoch < batches_of_epoch:
                    continue
                t0 = time.perf_counter()
                if tcfg.max_time is not None:  # this rank's clock; the vote makes it everyone's
                    vote.deadline = t0 + tcfg.max_time - p.train_time
                loss, tokens, grad_norm = train_step(parts, pending, **step_options, vote=vote)
                pending = []
                elapsed = time.perf_counter() - t0
                p.train_time += elapsed
                p.step_time += elapsed
                p.train_tokens += tokens * dist.world_size
                if grad_norm is None:
                    p.skipped_steps += 1
                    if vote.nonfinite:
                        bad_steps += 1
                        log.warning("non-finite loss: step skipped (%d in a row)", bad_steps)
                        if bad_steps >= tcfg.max_bad_steps:
                            stop = diverged_stop(bad_steps)
                            break
                    else:  # fp16: the GradScaler lowered its scale and skipped the update
                        log.info("fp16 gradients overflowed: step skipped, loss scale lowered")
                    stop = _voted_stop(vote, signals, tcfg)
                    if stop:
                        break
                    continue
                bad_steps = 0
                p.step += 1
                parts.schedule.step(p.step + 1)
                window.add(tokens * dist.world_size, elapsed, loss)
                if dist.is_main and p.step % tcfg.log_every == 0:
                    _log_train(parts, p, window, grad_norm, bar)
                bar.update(1)
                if p.step % tcfg.val_every == 0:
                    t_val = time.perf_counter()
                    validate_and_checkpoint(parts, p, **validation)
                    p.train_time += time.perf_counter() - t_val
                    if tcfg.patience is not None and broadcast_flag(
                        p.bad_validations >= tcfg.patience, dist
                    ):
                        stop = _patience_stop(tcfg, p)
                stop = _voted_stop(vote, signals, tcfg) or stop or budget_stop(tcfg, p, clock=False)
                if stop:
                    break
            else:
                p.epoch += 1
                p.batch_in_epoch = 0
                stop = budget_stop(tcfg, p, clock=False)
    bar.close()
    if (
        stop.reason is not StopReason.interrupted
        and p.step % tcfg.val_every != 0
        and p.step > 0
        and not (p.history and p.history[-1]["step"] == p.step)  # resumed after it: not twice
    ):
        validate_and_checkpoint(parts, p, **validation)  # same test on every rank
    p.ended = None if stop.reason is StopReason.interrupted else stop.reason.value
    save(parts, p, LAST_NAME, rank_rng=gather_rng_states(dist))
    return stop


def _voted_stop(vote: StopVote, signals: StopRequested, trainer_cfg: Any) -> Stop | None:
    """The stop every rank agreed on in this step's vote: a signal first, then the time."""
    if vote.signal:
        return signal_stop(signals.signal or signal.SIGTERM)
    if vote.time_up:
        return time_stop(trainer_cfg)
    return None


def _diverged_before(progress: Progress) -> Stop | None:
    """A run that diverged and was resumed (killed in its final test) does not train on."""
    if progress.ended == StopReason.diverged.value:
        return Stop(StopReason.diverged, "non-finite losses before it was resumed")
    return None


def _patience_stop(trainer_cfg: Any, progress: Progress) -> Stop | None:
    """Early stopping already due: a run resumed after it stopped early (e.g. killed in the
    final test decoding) must not train on."""
    patience = trainer_cfg.patience
    if patience is not None and progress.bad_validations >= patience:
        stop_on = option_value(trainer_cfg.stop_on)
        return early_stop(patience, stop_on=stop_on, min_delta=trainer_cfg.min_delta)
    return None


class _Window:
    """Loss and throughput since the last training log line."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.tokens, self.time, self.loss, self.steps = 0, 0.0, 0.0, 0

    def add(self, tokens: int, seconds: float, loss: float) -> None:
        self.tokens += tokens
        self.time += seconds
        self.loss += loss
        self.steps += 1


def _log_train(
    parts: TrainingParts, p: Progress, window: _Window, grad_norm: torch.Tensor, bar
) -> None:
    loss = window.loss / window.steps
    tok_s = window.tokens / max(window.time, 1e-9)
    window.reset()
    lr = parts.schedule.lr
    parts.logger.scalars(
        {
            "train/loss": loss,
            "train/lr": lr,
            "train/grad_norm": float(grad_norm),
            "train/tokens_per_sec": tok_s,
        },
        p.step,
    )
    if not bar.disable:
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tok_s:.0f}", lr=f"{lr:.2e}")
    else:
        log.info(
            "step %d epoch %d loss %.3f lr %.2e tokens/s %.0f", p.step, p.epoch, loss, lr, tok_s
        )
