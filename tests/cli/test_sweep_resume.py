"""Sweeps that resume (seq2seq.cli.sweep): the same sweep run again into the same sweep
directory skips finished jobs untouched, resumes interrupted ones from their last.pt, re-runs
failed ones, and ends with the line ``N finished, M resumed, K failed`` (exit 1 when K > 0)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from seq2seq.cli.sweep import SweepJob, count, read_outcomes, summary_line
from seq2seq.config import CarveConfig
from seq2seq.provenance import code_commit
from seq2seq.run_files import read_checkpoint_header
from seq2seq.training.rundir import config_diff, exported_plan, flatten, plan_job
from tests.conftest import TINY, TINY_RNN, needs_multi30k

# --------------------------------------------------------------------------- helpers


def overrides(shared_cache: Path, **changes: str | None) -> list[str]:
    """TINY + TINY_RNN + the shared cache, with ``changes`` (``trainer__seed="1,2"`` sets
    trainer.seed; None drops the key) replacing their values: Hydra takes a key once."""
    values = dict(o.split("=", 1) for o in [*TINY, *TINY_RNN])
    values["data.cache_dir"] = str(shared_cache)
    for key, value in changes.items():
        values[key.replace("__", ".")] = value
    return [f"{k}={v}" for k, v in values.items() if v is not None]


def sweep_command(sweep: Path, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "seq2seq.cli.train", "-m", *args, f"hydra.sweep.dir={sweep}"]


# seq2seq-train with every call of the run files' readers recorded (reader, resolved path) in
# the JSON file $SEQ2SEQ_READS at exit; the basic launcher runs the jobs in this process
COUNTING_READS = """
import atexit, json, os, sys
from pathlib import Path
from seq2seq import run_files

reads = []


def counted(reader):
    def read(path):
        reads.append([reader.__name__, str(Path(path).resolve())])
        return reader(path)

    return read


run_files.read_metrics = counted(run_files.read_metrics)
run_files.read_checkpoint_header = counted(run_files.read_checkpoint_header)
atexit.register(lambda: Path(os.environ["SEQ2SEQ_READS"]).write_text(json.dumps(reads)))
from seq2seq.cli.train import main

main()
"""


def run_sweep(
    sweep: Path, args: list[str], *, reads: Path | None = None
) -> subprocess.CompletedProcess:
    """The sweep in a fresh process; with ``reads``, the run files' reads are recorded there."""
    command = sweep_command(sweep, args)
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    if reads is not None:
        command[1:3] = ["-c", COUNTING_READS]
        env |= {"SEQ2SEQ_READS": str(reads)}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


def last_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


def files(run_dir: Path) -> dict[str, tuple[int, bytes]]:
    """Every file of a run directory with its mtime and bytes."""
    return {
        p.relative_to(run_dir).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


def history_steps(run_dir: Path) -> list[int]:
    lines = (run_dir / "history.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines if line.strip()]


def job_dirs(sweep: Path) -> list[str]:
    return sorted(p.name for p in sweep.iterdir() if p.name[0].isdigit())


# --------------------------------------------------------------------------- fast: the plan

CONFIG = {
    "run_dir": "/somewhere",
    "model": {"name": "rnn", "hidden_size": 24},
    "trainer": {"max_steps": 4, "seed": 1, "resume": False, "num_threads": 1},
    "data": {"dir": "/data/multi30k", "train_limit": 256},
}


def fake_run(
    run_dir: Path, *, status: str | None, last: dict | bool | None = None, best: bool = True, step=4
):
    """A run directory with metrics.json (``status``) and checkpoints holding ``last``'s
    config (no tensors: the plan reads the config and the step only)."""
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / ".hydra").mkdir()
    if status is not None:
        metrics = {"status": status, "steps": step, "test_bleu": 1.5, "val_bleu": 2.5}
        if status == "failed":
            metrics = {"status": "failed", "error": "boom"}
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
    payload = {"model": {}, "config": last or CONFIG, "progress": {"step": step}}
    if last is not False:
        torch.save(payload, run_dir / "checkpoints" / "last.pt")
    if best:
        torch.save(payload, run_dir / "checkpoints" / "best.pt")
    return run_dir


def other(**trainer) -> dict:
    return CONFIG | {"trainer": CONFIG["trainer"] | trainer}


def test_summary_line_is_exact_and_counts_every_job():
    assert summary_line(3, 1, 2) == "3 finished, 1 resumed, 2 failed"
    counts, failures = count(
        {
            "0_a": {"outcome": "finished", "detail": "skipped"},
            "1_b": {"outcome": "resumed", "detail": ""},
            "2_c": {"outcome": "failed", "detail": "boom"},
            "3_d": {"outcome": "started", "detail": ""},  # its process died
        }
    )
    assert summary_line(**counts) == "1 finished, 1 resumed, 2 failed"
    assert failures == [
        "failed: 2_c: boom",
        "failed: 3_d: its process ended without recording an outcome",
    ]


def test_job_records_round_trip(tmp_path):
    job = SweepJob.of(tmp_path, tmp_path / "0_seed1_rnn_additive")
    job.record("started", "")
    assert read_outcomes(job.state) == {
        "0_seed1_rnn_additive": {"outcome": "started", "detail": ""}
    }
    job.record("resumed", "finished at step 4")
    assert read_outcomes(job.state)["0_seed1_rnn_additive"]["outcome"] == "resumed"


def test_config_diff_names_the_differences_and_ignores_placement():
    moved = CONFIG | {"run_dir": "/elsewhere", "data": CONFIG["data"] | {"dir": "/mnt/m30k"}}
    assert config_diff(CONFIG, moved | {"trainer": CONFIG["trainer"] | {"resume": True}}) == ""
    assert config_diff(CONFIG, other(max_steps=6, seed=2)) == (
        "trainer.max_steps: 4 there, 6 here; trainer.seed: 1 there, 2 here"
    )
    assert config_diff(CONFIG, other(patience=3)) == "trainer.patience: (absent) there, 3 here"


def test_an_option_added_after_a_run_was_saved_differs_only_off_its_default():
    """A run saved before data.format/data.carve existed resumes under their defaults."""
    newer = CONFIG | {
        "data": CONFIG["data"] | {"format": "text", "carve": {"validation": 0, "test": 0}}
    }
    carve_defaults = flatten({"carve": OmegaConf.to_container(OmegaConf.structured(CarveConfig))})
    assert config_diff(CONFIG, newer, only=("data",)) == ""
    assert config_diff(newer, CONFIG, only=("data",)) == ""  # either side may be the older
    tsv = newer | {"data": newer["data"] | {"format": "tsv"}}
    assert config_diff(CONFIG, tsv, only=("data",)) == 'data.format: (absent) there, "tsv" here'
    assert carve_defaults["carve.validation"] == 0  # what the first case relied on
    with_bleu = CONFIG | {"bleu": {"tokenize": "13a"}}  # a node outside the config groups
    assert config_diff(CONFIG, with_bleu, only=("bleu",)) == ""
    assert config_diff(CONFIG, with_bleu | {"bleu": {"tokenize": "char"}}, only=("bleu",)) == (
        'bleu.tokenize: (absent) there, "char" here'
    )


@pytest.mark.parametrize(
    ("status", "last", "best", "action", "words"),
    [
        ("finished", None, True, "skip", "finished before (step 4, test BLEU 1.50): skipped"),
        ("diverged", None, True, "skip", "diverged before"),
        ("finished", other(max_steps=6), True, "refuse", "holds a different finished run"),
        ("finished", None, False, "refuse", "but no checkpoints/best.pt"),
        ("diverged", None, False, "skip", "diverged before"),  # before its first validation
        ("diverged", False, False, "refuse", "but no checkpoints/best.pt"),
        (None, None, True, "resume", "interrupted: resuming from checkpoints/last.pt at step 4"),
        (None, other(seed=2), True, "refuse", "holds a different unfinished run"),
        ("failed", None, True, "resume", "failed before (boom): resuming from"),
        ("failed", other(seed=2), True, "scratch", "last.pt is of another config"),
        ("failed", False, False, "scratch", "no checkpoints/last.pt: training from scratch"),
    ],
)
def test_plan_of_a_job_directory(tmp_path, status, last, best, action, words):
    run_dir = fake_run(tmp_path / "run", status=status, last=last, best=best)
    plan = plan_job(run_dir, CONFIG)
    assert plan.action == action, plan
    assert words in plan.reason
    assert "\n" not in plan.reason


def test_plan_of_a_new_directory_and_a_corrupt_checkpoint(tmp_path):
    (tmp_path / "new" / ".hydra").mkdir(parents=True)
    assert plan_job(tmp_path / "new", CONFIG).action == "scratch"
    run_dir = fake_run(tmp_path / "run", status=None)
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    plan = plan_job(run_dir, CONFIG)
    assert plan.action == "refuse" and f"{run_dir}: checkpoint " in plan.reason
    header = read_checkpoint_header(run_dir / "checkpoints" / "best.pt")
    assert (header.config, header.step) == (CONFIG, 4)


# --------------------------------------------------------------------------- slow: real sweeps


@needs_multi30k
@pytest.mark.slow
def test_interrupted_sweep_run_again_skips_finished_and_resumes(shared_cache, tmp_path):
    sweep = tmp_path / "sweep"
    args = overrides(
        shared_cache,
        trainer__seed="1,2,3",
        trainer__max_steps="30",
        trainer__val_every="5",
        trainer__patience="null",
    )
    second = sweep / "1_seed2_rnn_additive"
    proc = subprocess.Popen(  # run_sweep's command, signalled while it runs
        [sys.executable, "-m", "seq2seq.cli.train", "-m", *args, f"hydra.sweep.dir={sweep}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 300
    while not (second / "checkpoints" / "last.pt").is_file():  # its first validation
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)  # while the 2nd job trains
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, out[-2000:] + err[-3000:]
    assert "sweep interrupted in 1_seed2_rnn_additive (signal SIGTERM)" in err
    assert job_dirs(sweep) == ["0_seed1_rnn_additive", "1_seed2_rnn_additive"]  # it stopped
    first = files(sweep / "0_seed1_rnn_additive")
    step = read_checkpoint_header(second / "checkpoints" / "last.pt").step
    assert 5 <= step < 30
    history = (second / "history.jsonl").read_text()

    result = run_sweep(sweep, args)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert last_line(result) == "2 finished, 1 resumed, 0 failed"
    assert "0_seed1_rnn_additive: finished before (step 30" in result.stderr
    assert files(sweep / "0_seed1_rnn_additive") == first  # not retrained, records untouched
    log = (second / "train.log").read_text()
    assert f"interrupted: resuming from checkpoints/last.pt at step {step}" in log
    assert f"at step {step} (epoch" in log  # the loop's own "resumed from ... at step"
    assert (second / "history.jsonl").read_text().startswith(history)
    assert history_steps(second) == [5, 10, 15, 20, 25, 30]
    for name in job_dirs(sweep):
        metrics = json.loads((sweep / name / "metrics.json").read_text())
        assert (metrics["status"], metrics["steps"]) == ("finished", 30), name
    assert not (sweep / ".seq2seq_sweep").exists()


@needs_multi30k
@pytest.mark.slow
def test_a_failed_job_does_not_stop_the_sweep_and_stays_failed(shared_cache, tmp_path):
    sweep = tmp_path / "sweep"
    args = overrides(shared_cache, model__hidden_size="24,0")  # job 1 fails at its start
    result = run_sweep(sweep, args)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-3000:]
    assert last_line(result) == "1 finished, 0 resumed, 1 failed"
    assert (
        "failed: 1_seed1234_rnn_additive: model.hidden_size must be >= 1, got 0"
        in result.stderr.splitlines()
    )
    assert "Traceback" not in result.stdout + result.stderr
    failed = json.loads((sweep / "1_seed1234_rnn_additive" / "metrics.json").read_text())
    assert failed["status"] == "failed"
    finished = files(sweep / "0_seed1234_rnn_additive")

    again = run_sweep(sweep, args)  # nothing fixed
    assert again.returncode == 1, again.stdout[-2000:] + again.stderr[-3000:]
    assert last_line(again) == "1 finished, 0 resumed, 1 failed"
    assert "no checkpoints/last.pt: training from scratch" in again.stdout
    assert files(sweep / "0_seed1234_rnn_additive") == finished


@needs_multi30k
@pytest.mark.slow
def test_killed_in_the_final_test_decoding_then_a_different_run(shared_cache, tmp_path):
    sweep = tmp_path / "sweep"
    # 5 steps, validations at 2, 4 and the final one at 5
    args = overrides(shared_cache, trainer__seed="7", trainer__max_steps="5")
    assert run_sweep(sweep, args).returncode == 0
    run_dir = sweep / "0_seed7_rnn_additive"
    # what a kill during the test decoding leaves: training done, last.pt saved, no results
    (run_dir / "metrics.json").unlink()
    (run_dir / "hyps" / "test.txt").unlink()
    history = (run_dir / "history.jsonl").read_bytes()
    best = (run_dir / "checkpoints" / "best.pt").stat().st_mtime_ns

    result = run_sweep(sweep, args)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert last_line(result) == "0 finished, 1 resumed, 0 failed"
    assert (run_dir / "history.jsonl").read_bytes() == history  # no step trained or validated twice
    assert (run_dir / "checkpoints" / "best.pt").stat().st_mtime_ns == best
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["status"], metrics["steps"]) == ("finished", 5)
    assert (run_dir / "hyps" / "test.txt").is_file()

    # the same job directory, another budget: refused in one line, the run left as it was
    before = files(run_dir)
    other_run = run_sweep(sweep, overrides(shared_cache, trainer__seed="7", trainer__max_steps="6"))
    assert other_run.returncode == 1
    assert last_line(other_run) == "0 finished, 0 resumed, 1 failed"
    errors = [line for line in other_run.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {run_dir} holds a different finished run (trainer.max_steps: 5 there, 6 here): "
        "remove it or choose another hydra.sweep.dir"
    ]
    assert files(run_dir) == before  # .hydra/ records included


@needs_multi30k
@pytest.mark.slow
def test_a_resumed_job_reads_its_metrics_and_its_checkpoint_header_once(shared_cache, tmp_path):
    """The plan's reads of the job directory reach the training's claim: nothing reads
    metrics.json or last.pt's header again (last.pt is then loaded once, whole, to resume)."""
    sweep = tmp_path / "sweep"
    args = overrides(shared_cache, trainer__seed="7", trainer__max_steps="2")
    assert run_sweep(sweep, args).returncode == 0
    run_dir = (sweep / "0_seed7_rnn_additive").resolve()
    # what a failure after the last checkpoint (in the final test) leaves: no result, last.pt
    (run_dir / "metrics.json").write_text(json.dumps({"status": "failed", "error": "boom"}))

    reads = tmp_path / "reads.json"
    result = run_sweep(sweep, args, reads=reads)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert last_line(result) == "0 finished, 1 resumed, 0 failed"
    assert "failed before (boom): resuming from checkpoints/last.pt at step 2" in result.stdout
    assert json.loads(reads.read_text()) == [
        ["read_metrics", str(run_dir)],
        ["read_checkpoint_header", str(run_dir / "checkpoints" / "last.pt")],
    ]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["status"], metrics["steps"]) == ("finished", 2)


# --------------------------------------------------------------------------- exported summaries


def exported_summary(exported: Path, run_dir: Path, config: dict, **metrics) -> Path:
    """A summary as seq2seq-compare --export writes it, for the job directory ``run_dir``."""
    summary = exported / run_dir.parent.name / run_dir.name
    (summary / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(config), summary / ".hydra" / "config.yaml")
    record = {"status": "finished", "steps": 30, "test_bleu": 12.5, "commit": code_commit()}
    (summary / "metrics.json").write_text(json.dumps(record | metrics))
    return summary


def test_a_job_exported_by_this_commit_with_its_config_is_skipped(tmp_path):
    run_dir = tmp_path / "grid" / "3_seed2_rnn_additive"
    exported_summary(tmp_path / "docs", run_dir, CONFIG)
    plan = exported_plan(run_dir, CONFIG, tmp_path / "docs")
    assert plan.action == "skip" and "test BLEU 12.50): skipped" in plan.reason
    assert "exported to" in plan.reason and not run_dir.exists()  # nothing to train or read


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"commit": "0" * 40}, "was trained by commit 0000000000000000000000000000000000000000"),
        ({"commit": None}, "was trained by commit None"),
        ({"config": {"trainer": {"max_steps": 40}}}, "holds the summary of a different run"),
    ],
)
def test_a_summary_of_another_commit_or_config_refuses_the_job(tmp_path, change, words):
    run_dir = tmp_path / "grid" / "0_seed1_rnn_none"
    saved = OmegaConf.to_container(
        OmegaConf.merge(OmegaConf.create(CONFIG), change.pop("config", {}))
    )
    exported_summary(tmp_path / "docs", run_dir, saved, **change)
    plan = exported_plan(run_dir, CONFIG, tmp_path / "docs")
    assert plan.action == "refuse" and words in plan.reason


def test_no_summary_or_an_unfinished_one_leaves_the_job_to_its_directory(tmp_path):
    run_dir = tmp_path / "grid" / "0_seed1_rnn_none"
    assert exported_plan(run_dir, CONFIG, tmp_path / "docs") is None
    exported_summary(tmp_path / "docs", run_dir, CONFIG, status="failed")
    assert exported_plan(run_dir, CONFIG, tmp_path / "docs") is None


@needs_multi30k
@pytest.mark.slow
def test_a_sweep_in_a_fresh_checkout_skips_the_jobs_whose_summaries_are_committed(
    shared_cache, tmp_path
):
    """The grid over sittings: each finished job exports its summary to exported_runs; the same
    sweep in an empty sweep directory (another sitting, another machine) trains none again."""
    exported = tmp_path / "docs"
    args = overrides(
        shared_cache, trainer__seed="1,2", trainer__max_steps="4", trainer__patience="null"
    )
    args.append(f"exported_runs={exported}")
    first = tmp_path / "sitting1" / "grid"
    assert run_sweep(first, args).returncode == 0
    summaries = sorted(p.name for p in (exported / "grid").iterdir())
    # nothing half-built; the sweep's definition beside the jobs (the report's missing jobs)
    assert summaries == ["0_seed1_rnn_additive", "1_seed2_rnn_additive", "multirun.yaml"]
    for name in summaries[:2]:
        metrics = json.loads((exported / "grid" / name / "metrics.json").read_text())
        assert metrics["status"] == "finished" and metrics["commit"] == code_commit()
        assert (exported / "grid" / name / "hyps" / "test.txt").is_file()
    second = tmp_path / "sitting2" / "grid"
    result = run_sweep(second, args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_line(result) == "2 finished, 0 resumed, 0 failed"
    for name in ("0_seed1_rnn_additive", "1_seed2_rnn_additive"):
        assert f"{name}: finished, exported to {exported / 'grid' / name}" in result.stderr
        assert not (second / name / "checkpoints").exists()  # not trained again
