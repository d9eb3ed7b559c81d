"""``train(cfg)``: build the parts, fit, test the best checkpoint, write the run's metrics.

The recipe only wires: checks and setup (:mod:`.setup`), the loop (:func:`.loop.fit`), and the
end-of-training test through the same evaluation code as seq2seq-evaluate
(:func:`seq2seq.evaluation.evaluate.evaluate_model`). The Hydra entry point
(:mod:`seq2seq.cli.train`) only calls :func:`train`. Everything is written under ``cfg.run_dir``.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_checkpoint
from ..config import NO_JOB_DIR, run_label, to_container
from ..data.pipeline import prepare_data
from ..errors import ConfigError, PeerFailed, one_line
from ..evaluation.aer import AER_KEYS, gold_word_links, prepare_aer, score_gold, split_gold
from ..evaluation.bleu import run_tokenize
from ..evaluation.evaluate import evaluate_model
from ..models.registry import model_class
from ..provenance import run_provenance
from ..run_files import (
    BEST_NAME,
    HYPS,
    LAST,
    LAST_NAME,
    TEST,
    TEST_HYPS,
    TEST_REFERENCES,
    TEST_SOURCES,
    write_metrics,
)
from ..runtime import seed_everything, seed_rank
from .checks import check_config
from .loop import fit, resume
from .rundir import Contents, Holds, RunDirError, RunLock, claim
from .setup import TrainingParts, check_writable, not_writable, setup_parts, setup_runtime
from .state import Interrupted, Progress, Stop, StopReason, converged, raise_on_signal

log = logging.getLogger("seq2seq.train")


def test_best(parts: TrainingParts, cfg: Any) -> dict:
    """Decode the test split with the best checkpoint (beam search, ``cfg.decode``); write the
    hypotheses beside the test sources and references they are scored against (what
    seq2seq-compare reads, never the corpus) and, with ``dump_alignments``, the alignments;
    return the scores and ``test_decode_s``."""
    best = parts.ckpt_dir / BEST_NAME
    if best.is_file():
        weights = load_checkpoint(best, map_location=parts.runtime.device)["model"]
        parts.model.load_state_dict(weights)
    test = parts.data.splits["test"]
    decoded, scores = evaluate_model(
        parts.model,
        parts.data.tokenizer,
        test.src_ids,
        test.src_text,
        test.tgt_text,
        cfg.decode,
        device=parts.runtime.device,
        amp_dtype=parts.runtime.amp_dtype,
        dump_dir=parts.run_dir if cfg.dump_alignments else None,
        dump_name=TEST,
        alignment=cfg.alignment,
        tokenize=run_tokenize(cfg),
    )
    (parts.run_dir / HYPS).mkdir(parents=True, exist_ok=True)
    for name, lines in (
        (TEST_HYPS, decoded.texts),
        (TEST_SOURCES, test.src_text),
        (TEST_REFERENCES, test.tgt_text),
    ):
        (parts.run_dir / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    scores["test_decode_s"] = scores.pop("decode_s")
    if cfg.data.get("test_alignments") and parts.model.has_alignment:
        scores |= test_alignment_scores(parts, cfg)
    return scores


def test_alignment_scores(parts: TrainingParts, cfg: Any) -> dict:
    """``test_aer`` (and precision/recall) of the best model's teacher-forced attention against
    the test split's gold links (``data.test_alignments``, a file in ``data.dir`` in the format
    ``alignment.gold_format``), with the extraction options of ``cfg.alignment``."""
    test = parts.data.splits["test"]
    path = Path(cfg.data.dir) / cfg.data.test_alignments
    gold = split_gold(path, test.src_text, test.tgt_text, cfg.alignment)
    reverse = prepare_aer(parts.model, cfg.alignment, cfg, device=parts.runtime.device)
    links = gold_word_links(
        parts.model,
        parts.data.tokenizer,
        gold,
        device=parts.runtime.device,
        amp_dtype=parts.runtime.amp_dtype,
        alignment=cfg.alignment,
        reverse=reverse,
    )
    scores = score_gold(links, gold)
    return {f"test_{key}": scores[key] for key in AER_KEYS}


def run_metrics(
    cfg: Any, parts: TrainingParts, progress: Progress, stop: Stop, test: dict, wall_s: float
) -> dict:
    """The flat metrics object of a run that ended (its ``run_files.METRICS``)."""
    p = progress
    family = str(cfg.model.name)
    return {
        # diverged: scored on its best checkpoint, but not comparable with a finished run
        "status": "diverged" if stop.reason is StopReason.diverged else "finished",
        "stop_reason": str(stop),
        "stopped_by": stop.reason.value,
        "model": family,
        "attention": model_class(family).own_attention or str(cfg.attention.name),
        "label": run_label(family, str(cfg.attention.name)),
        "params": parts.model.num_parameters(),
        "steps": p.step,
        "epochs": p.epoch + p.batch_in_epoch / max(1, parts.plan.num_batches(p.epoch)),
        "train_tokens": p.train_tokens,
        "converged": converged(stop, cfg.trainer.patience),
        "val_bleu": p.best_bleu,
        "best_step": p.best_step,
        "test_bleu": test["bleu"],
        "test_chrf": test["chrf"],
        "test_bleu_lc": test["bleu_lc"],
        "test_bp": test["bp"],
        "test_length_ratio": test["length_ratio"],
        "bleu_tokenize": test["bleu_tokenize"],
        "sacrebleu_signature": test["signature"],
        "chrf_signature": test["chrf_signature"],
        "beam_size": cfg.decode.beam_size,
        "train_tokens_per_sec": round(p.train_tokens / max(p.step_time, 1e-9), 1),
        "train_time_s": round(p.train_time, 1),
        "test_decode_s": test["test_decode_s"],
        **{k: test[k] for k in (f"test_{key}" for key in AER_KEYS) if k in test},
        "skipped_steps": p.skipped_steps,
        "wall_time_s": round(wall_s, 1),
        "device": str(parts.runtime.device),
        "precision": parts.runtime.precision,
        **run_provenance(parts.runtime.device),
    }


def _start(
    cfg: Any, found: Contents | None = None, *, checked: bool = False
) -> tuple[TrainingParts, RunLock]:
    """Checks (unless ``checked``), runtime, the run directory's claim and lock, seed, data,
    parts: in this order. Nothing is written into a directory that holds a run before its
    claim succeeded."""
    if not checked:
        check_config(cfg)  # before any data or device work
    if cfg.run_dir == NO_JOB_DIR:
        raise ConfigError("run_dir is not set: outside seq2seq-train pass run_dir=DIR")
    runtime = setup_runtime(cfg.trainer)
    run_dir = Path(cfg.run_dir)
    lock, contents = take_run_dir(run_dir, cfg, runtime.dist, found)
    try:
        if cfg.trainer.resume and contents.holds is Holds.finished:
            done = finished_already(contents, cfg.trainer)
            if done is not None:
                raise NothingToDo(done)
        check_writable(run_dir)
        seed_everything(cfg.trainer.seed)
        data = prepare_data_once(cfg.data, runtime.dist)
        parts = setup_parts(cfg, runtime, data)
        # the same seed above (data, initial weights); from here each DDP rank its own stream
        seed_rank(cfg.trainer.seed, runtime.dist.rank)
        return parts, lock
    except BaseException:
        lock.release()
        raise


class NothingToDo(Exception):
    """A resumed run that had already ended under this budget: left exactly as it was."""

    def __init__(self, metrics: dict) -> None:
        self.metrics = metrics
        super().__init__("nothing to do")


def finished_already(contents: Contents, trainer_cfg: Any) -> dict | None:
    """The metrics of the finished run its claim found (``contents``) when resuming it would
    train no step (its budget, patience or divergence already reached): a resume then
    changes nothing."""
    import dataclasses

    from .loop import _diverged_before, _patience_stop
    from .state import budget_stop

    saved = contents.saved
    if saved is None or saved.path.name != LAST_NAME:  # no last checkpoint to resume from
        return None
    try:
        names = {f.name for f in dataclasses.fields(Progress)}
        progress = Progress(**{k: v for k, v in saved.progress.items() if k in names})
    except Exception:  # noqa: BLE001 - a progress this code cannot take: the resume reports it
        return None
    if budget_stop(trainer_cfg, progress) or _patience_stop(trainer_cfg, progress):
        return contents.metrics
    if _diverged_before(progress):
        return contents.metrics
    return None


def prepare_data_once(data_cfg: Any, dist) -> Any:
    """The prepared data; under DDP rank 0 prepares it (tokenizer training, tokenized caches)
    while the others wait, then they read its caches, instead of every rank doing the same
    work at once. A failure on rank 0 reaches the others (:class:`PeerFailed`)."""
    if not dist.enabled:
        return prepare_data(data_cfg)
    data, failure = None, None
    if dist.is_main:
        try:
            data = prepare_data(data_cfg)
        except BaseException as err:  # noqa: BLE001 - told to the other ranks, then raised
            failure = err
    verdict = [None if failure is None else one_line(failure)]
    torch.distributed.broadcast_object_list(verdict, src=0)
    if failure is not None:
        raise failure
    if verdict[0] is not None:
        raise PeerFailed(f"rank 0 failed preparing the data: {verdict[0]}")
    return data if dist.is_main else prepare_data(data_cfg)


def take_run_dir(
    run_dir: Path, cfg: Any, dist, found: Contents | None = None
) -> tuple[RunLock, Contents]:
    """The main process locks ``run_dir`` and claims it (:func:`.rundir.claim`, given what a
    sweep job's plan ``found``); DDP ranks receive its verdict, so all of them refuse or
    none."""
    lock = RunLock(run_dir)
    refusal = None
    contents = Contents(Holds.nothing)
    if dist.is_main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            lock.acquire()
            contents = claim(
                run_dir,
                resume=cfg.trainer.resume,
                overwrite=cfg.trainer.overwrite,
                config=to_container(cfg),
                found=found,
            )
        except RunDirError as err:
            lock.release()
            refusal = str(err)
        except OSError as err:
            lock.release()
            refusal = str(not_writable(run_dir, err))
    if dist.enabled:
        verdict = [refusal]
        torch.distributed.broadcast_object_list(verdict, src=0)
        refusal = verdict[0]
    if refusal is not None:
        raise RunDirError(refusal)
    return lock, contents


def _interrupted(progress: Progress, why: str, signum: int) -> dict:
    log.warning(
        "interrupted (%s) at step %d: %s is saved; trainer.resume=true continues the run",
        why,
        progress.step,
        LAST,
    )
    return {"status": "interrupted", "steps": progress.step, "stop_reason": why, "signal": signum}


def train(cfg: Any, *, found: Contents | None = None, checked: bool = False) -> dict:
    """Train, then evaluate the best checkpoint on test; return (and write) the run's metrics.

    An interrupt (SIGINT/SIGTERM) in training or in the final test returns
    ``{"status": "interrupted", "signal": N, ...}`` after the last checkpoint is saved; the run
    directory is refused (:class:`~.rundir.RunDirError`, nothing changed) when it holds
    another run. ``found``: what a sweep job's plan read of the run directory, handed to the
    claim so the directory is not read again. ``checked``: the caller has run
    :func:`.checks.check_config` on this config (seq2seq-train's pre-check), so it is not
    checked again.
    """
    wall_start = time.perf_counter()
    try:
        parts, lock = _start(cfg, found, checked=checked)
    except NothingToDo as done:
        steps = done.metrics.get("steps")
        print(
            f"{cfg.run_dir} already ended at step {steps} ({done.metrics.get('stop_reason')}): "
            "nothing to do, nothing was changed; raise trainer.max_steps (or max_epochs, "
            "max_time) to continue it",
            file=sys.stderr,
        )
        return {**done.metrics, "unchanged": True}
    runtime = parts.runtime
    family = str(cfg.model.name)
    try:
        log.info(
            "model %s: %d parameters on %s (%s, %d threads)",
            run_label(family, str(cfg.attention.name), sep="/"),
            parts.model.num_parameters(),
            runtime.device,
            runtime.precision,
            runtime.threads,
        )
        progress = resume(parts, family) if cfg.trainer.resume else Progress()
        stop = fit(
            parts,
            progress,
            trainer_cfg=cfg.trainer,
            optim_cfg=cfg.optim,
            decode=cfg.decode,
            max_tokens=cfg.data.max_tokens,
        )
        if stop.reason is StopReason.interrupted:
            return _interrupted(progress, str(stop), stop.signum or signal.SIGTERM)
        log.info("training ended at step %d: %s", progress.step, stop)
        if not runtime.dist.is_main:
            return {}
        try:
            with raise_on_signal():  # the test is redone whole by the resume
                test = test_best(parts, cfg)
        except Interrupted as interrupt:
            return _interrupted(progress, f"{interrupt} in the final test", interrupt.signum)
        metrics = run_metrics(
            cfg, parts, progress, stop, test, wall_s=time.perf_counter() - wall_start
        )
        write_metrics(parts.run_dir, metrics)
        print(
            f"test BLEU {test['bleu']:.2f} chrF {test['chrf']:.2f} "
            f"(beam {cfg.decode.beam_size}) {test['signature']}"
        )
        print(
            "lowercased BLEU (bleu_lc, for comparison with published figures only): "
            f"{test['bleu_lc']:.2f}"
        )
        return metrics
    finally:
        parts.logger.close()
        lock.release()
        if runtime.dist.enabled and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
