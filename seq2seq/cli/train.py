"""seq2seq-train [overrides]: the Hydra entry point. It only calls seq2seq.training.train.

In a sweep (``-m``, or a preset with ``hydra.mode: MULTIRUN``) each job first looks at its
run directory (:func:`seq2seq.training.rundir.plan_job`): a finished run is skipped, an
interrupted one resumed from its last checkpoint, a failed one trained again; a failed job
never stops the sweep, and :class:`seq2seq.cli.sweep.ResumableSweep` prints the summary line at the end.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ..composition import CONFIG_DIR
from ..config import register_configs, to_container
from ..interrupts import interrupt_signal
from ..run_files import LAST, METRICS
from ..training.rundir import ENDED, Contents, clear_outputs, exported_plan, plan_job
from . import records, sweep
from .common import USER_ERRORS, report_user_errors
from .precheck import precheck_train_argv, prechecked

log = logging.getLogger("seq2seq")
register_configs()


def main() -> None:
    """Check the command line first (one line per bad input, nothing created), then run Hydra."""
    from ..runtime import keep_freed_memory

    keep_freed_memory()
    report_user_errors(lambda: precheck_train_argv(sys.argv[1:]), **START_UP)
    report_user_errors(hydra_main, **START_UP)


# an interrupt before the training loop (composition, the run directory's claim, the first
# data preparation, building the model): nothing trained, nothing recorded as a failure
START_UP = {
    "what": "seq2seq-train's start-up (before the first step)",
    "advice": "nothing was trained or recorded; run the same command again",
}


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    # Hydra turns an exception out of this function into its own report: interrupts end here
    return report_user_errors(lambda: run_job(cfg), **START_UP)


def run_job(cfg: DictConfig) -> float | None:
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        return sweep_job(cfg)
    metrics = train_or_fail(cfg, multirun=False, checked=prechecked(sys.argv[1:]))
    if metrics.get("unchanged"):  # a resume of a run that had ended: its records stay too
        records.restore(Path(cfg.run_dir))
    if metrics.get("status") == "interrupted":
        print(
            f"interrupted ({metrics['stop_reason']}) at step {metrics['steps']}: "
            f"{LAST} is saved; resume with: "
            f"{resume_command(sys.argv[1:], Path(cfg.run_dir))}",
            file=sys.stderr,
        )
        raise SystemExit(interrupted_exit_code(metrics))
    return metrics.get("val_bleu")


def interrupted_exit_code(metrics: dict) -> int:
    """128 + the signal's number, as a shell reports a process the signal ended (130, 143)."""
    return 128 + int(metrics.get("signal") or signal.SIGTERM)


def resume_command(argv: list[str], run_dir: Path) -> str:
    """The command line that resumes a run: the user's own arguments, their run directory and
    resume/overwrite choices replaced by ``hydra.run.dir=<run_dir> trainer.resume=true``."""
    replaced = re.compile(r"^\+{0,2}(hydra\.run\.dir|trainer\.resume|trainer\.overwrite)=")
    kept = [arg for arg in argv if not replaced.match(arg)]
    return shlex.join(
        ["seq2seq-train", *kept, f"hydra.run.dir={run_dir.resolve()}", "trainer.resume=true"]
    )


def train_or_fail(
    cfg: DictConfig, *, multirun: bool, found: Contents | None = None, checked: bool = False
) -> dict:
    """``train(cfg)``'s metrics; on an error, either one ``error:`` line and exit 1 (a single
    run) or the failure returned (a sweep's job, which must not stop the sweep:
    seq2seq-compare lists it as failed). The failure is recorded by
    :func:`seq2seq.training.failure.record_failure`; a directory it leaves as it was gets its
    Hydra records put back too (a single run). ``found``: what a sweep job's plan found in the
    directory (then it is not read again); ``checked``: the pre-check checked this config
    (then it is not checked again)."""
    from ..training import train
    from ..training.failure import held_before, kept_as_it_was, record_failure

    run_dir = Path(cfg.run_dir)
    held = held_before(run_dir, found)
    try:
        return train(cfg, found=found, checked=checked)
    except BaseException as err:
        if interrupt_signal(err) is not None:  # not a failure: the caller says so in one line
            if kept_as_it_was(held) and not multirun:
                records.restore(run_dir)
            raise
        if not isinstance(err, Exception):  # SystemExit and the like
            raise
        failure = record_failure(run_dir, cfg, err, held)
        if failure.get("untouched") and not multirun:
            records.restore(run_dir)
        message = failure["error"]
        user_error = isinstance(err, USER_ERRORS) or "out of memory" in message
        if os.environ.get("SEQ2SEQ_DEBUG") or (not multirun and not user_error):
            raise
        if multirun:
            if user_error:
                log.error("error: %s", message)
            else:  # a bug: its traceback goes to the job's log, the sweep goes on
                log.exception("error: %s", message)
            return failure
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)


def sweep_job(cfg: DictConfig) -> float | None:
    """One job of a sweep: skip, resume, or train its run directory (see plan_job), and
    record its outcome for the sweep's summary line."""
    run_dir = Path(cfg.run_dir)
    job = sweep.SweepJob.of(HydraConfig.get().sweep.dir, run_dir)
    job.record("started", "")
    try:
        config = to_container(cfg)
        exported = cfg.get("exported_runs")
        plan = exported and exported_plan(run_dir, config, Path(exported))
        plan = plan or plan_job(run_dir, config)
    except Exception as err:  # noqa: BLE001 - an unreadable directory fails this job only
        if os.environ.get("SEQ2SEQ_DEBUG"):
            raise
        reason = f"{run_dir}: cannot tell what it holds ({type(err).__name__}: {err})"
        print(f"error: {reason}", file=sys.stderr)
        job.record("failed", reason)
        return None
    if plan.action in ("skip", "refuse"):
        # the directory stays as it was: its records too, and nothing goes to its log
        job.restore_hydra_records()
        job.detach_run_log()
        if plan.action == "skip":
            print(f"{job.key}: {plan.reason}", file=sys.stderr)
            job.record("finished", plan.reason)
            return plan.val_bleu
        print(f"error: {plan.reason}", file=sys.stderr)
        job.record("failed", plan.reason)
        return None
    if plan.action == "resume":
        log.info("%s: %s", job.key, plan.reason)
        (run_dir / METRICS).unlink(missing_ok=True)  # a failed attempt's, if any
        cfg.trainer.resume = True
    elif plan.clear:
        log.info("%s: %s", job.key, plan.reason)
        try:
            clear_outputs(run_dir)
        except OSError as err:
            reason = f"{run_dir}: cannot remove the failed attempt's outputs ({err})"
            log.error("error: %s", reason)
            job.record("failed", reason)
            return None
    metrics = train_or_fail(cfg, multirun=True, found=plan.claims())
    if metrics.get("untouched"):
        job.restore_hydra_records()
    status = metrics.get("status")
    if status in ENDED:
        outcome = "resumed" if plan.action == "resume" else "finished"
        if exported:
            from ..compare.export import export_finished_job

            try:
                summary = export_finished_job(run_dir, Path(exported))
                log.info("%s: summary exported to %s", job.key, summary)
            except OSError as err:  # the run stands; seq2seq-compare --export can redo it
                log.error("error: %s: could not export its summary (%s)", job.key, err)
        job.record(outcome, f"{status} at step {metrics.get('steps')}")
    elif status == "interrupted":
        detail = f"interrupted at step {metrics.get('steps')}: run the sweep again to resume it"
        job.record("failed", detail)
        if job.started_this_process():  # the basic launcher: the signal was for the sweep
            print(
                f"sweep interrupted in {job.key} ({metrics.get('stop_reason')}) at step "
                f"{metrics.get('steps')}: run the same command (same hydra.sweep.dir="
                f"{HydraConfig.get().sweep.dir}) again to skip the finished jobs and resume it",
                file=sys.stderr,
            )
            raise SystemExit(interrupted_exit_code(metrics))
    elif status == "failed":
        job.record("failed", str(metrics.get("error")))
    return metrics.get("val_bleu")


if __name__ == "__main__":
    main()
