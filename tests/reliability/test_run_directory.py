"""A run directory is never lost or mixed up, and exits tell the truth: a finished or unfinished
run is refused (nothing changes), one writer at a time, a failed attempt leaves the run as it
was, interrupts exit 130/143 with the exact resume command, also in the final test."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from seq2seq.training import loop, recipe
from seq2seq.training.rundir import LOCK_NAME, Holds, RunDirError, RunLock, inspect
from tests.cli.runner import assert_one_error_line, run_main
from tests.conftest import needs_multi30k, tiny_overrides

pytestmark = needs_multi30k
REAL_STEP, REAL_EVALUATE = loop.train_step, recipe.evaluate_model


def tree(run_dir: Path) -> dict[str, tuple[str, int]]:
    """Every file below ``run_dir``: its content hash and mtime."""
    return {
        path.relative_to(run_dir).as_posix(): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
        for path in sorted(run_dir.rglob("*"))
        if path.is_file()
    }


def history_steps(run_dir: Path) -> list[int]:
    lines = (run_dir / "history.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


@pytest.fixture
def unfinished(tiny_run) -> Path:
    """The finished run without its final metrics: what an interrupt leaves."""
    run_dir = tiny_run(through_cli=True)
    (run_dir / "metrics.json").unlink()
    shutil.rmtree(run_dir / "hyps")
    return run_dir


def train_cli(run_dir: Path, shared_cache: Path, capfd, monkeypatch, *extra: str):
    argv = tiny_overrides(shared_cache, f"hydra.run.dir={run_dir}", *extra)
    return run_main("train", argv, capfd, monkeypatch)


# ---------------------------------------------------------------- 1. a finished run is kept


@pytest.mark.parametrize("extra", [(), ("model.hidden_size=32",)])
def test_training_into_a_finished_run_is_refused_and_changes_nothing(
    finished, shared_cache, capfd, monkeypatch, extra
):
    before = tree(finished)
    bleu = json.loads((finished / "metrics.json").read_text())["test_bleu"]
    result = train_cli(finished, shared_cache, capfd, monkeypatch, *extra)
    assert_one_error_line(
        result,
        f"{finished} holds a finished run (status finished at step 4, test BLEU {bleu:.2f}); "
        "nothing was changed: choose another hydra.run.dir, add trainer.resume=true to continue "
        "it (e.g. with a larger trainer.max_steps), or trainer.overwrite=true to replace it",
    )
    assert tree(finished) == before  # .hydra/ records, log, checkpoints, metrics, history


def test_overwrite_replaces_a_finished_run_without_mixing_the_two(
    finished, shared_cache, capfd, monkeypatch
):
    (finished / "eval").mkdir()
    (finished / "eval" / "old.json").write_text("{}")
    (finished / "export" / "ctranslate2").mkdir(parents=True)  # seq2seq-export's default out
    (finished / "export" / "ctranslate2" / "model.bin").write_bytes(b"old weights")
    result = train_cli(
        finished, shared_cache, capfd, monkeypatch, "trainer.overwrite=true", "trainer.max_steps=6"
    )
    assert result.code == 0, result.stderr[-2000:]
    assert "trainer.overwrite=true: removing the run in" in result.stdout + result.stderr
    assert history_steps(finished) == [2, 4, 6]  # the new run's validations only
    assert json.loads((finished / "metrics.json").read_text())["steps"] == 6
    assert not (finished / "eval").exists() and not (finished / LOCK_NAME).exists()
    assert not (finished / "export").exists()  # no export of the replaced model is left


def test_an_unfinished_run_is_refused_without_resume(unfinished, shared_cache, capfd, monkeypatch):
    before = tree(unfinished)
    result = train_cli(unfinished, shared_cache, capfd, monkeypatch)
    assert_one_error_line(
        result,
        f"{unfinished} holds an unfinished run (checkpoints/last.pt at step 4); nothing was "
        "changed: add trainer.resume=true to continue it, or trainer.overwrite=true to replace it",
    )
    assert tree(unfinished) == before


def test_the_python_api_refuses_too(finished, shared_cache):
    from tests.conftest import compose_config

    with pytest.raises(RunDirError, match="holds a finished run"):
        recipe.train(compose_config(*tiny_overrides(shared_cache, f"run_dir={finished}")))


# ---------------------------------------------------------------- 2. one writer


def test_a_live_writer_holds_the_directory(tmp_path, shared_cache, capfd, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    writer = subprocess.Popen(["sleep", "60"])
    try:
        lock = {"pid": writer.pid, "host": socket.gethostname(), "since": "2026-12-02T01:00:00"}
        (run_dir / LOCK_NAME).write_text(json.dumps(lock))
        result = train_cli(run_dir, shared_cache, capfd, monkeypatch)
    finally:
        writer.kill()
        writer.wait()
    assert_one_error_line(
        result,
        f"{run_dir} is in use: pid {writer.pid} on {socket.gethostname()} has trained there "
        f"since 2026-12-02T01:00:00 (one training per run directory); wait for it, or remove "
        f"{run_dir / LOCK_NAME} if that process is gone",
    )
    assert not (run_dir / "metrics.json").exists()  # the other writer's directory: untouched
    assert json.loads((run_dir / LOCK_NAME).read_text())["pid"] == writer.pid


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, shared_cache, capfd, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (run_dir / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    result = train_cli(run_dir, shared_cache, capfd, monkeypatch)
    assert result.code == 0, result.stderr[-2000:]
    assert f"taking over the stale lock {run_dir / LOCK_NAME} (pid {dead.pid} on " in (
        result.stdout + result.stderr
    )
    assert not (run_dir / LOCK_NAME).exists()  # released at the end


def test_the_lock_is_exclusive_and_released(tmp_path):
    with RunLock(tmp_path) as first:
        assert json.loads(first.path.read_text())["pid"] == os.getpid()
        with pytest.raises(RunDirError, match="is in use: pid"):
            RunLock(tmp_path).acquire()  # this process is alive
    assert not (tmp_path / LOCK_NAME).exists()


# ---------------------------------------------------------------- 3. failed attempts


def test_a_typo_into_a_finished_run_keeps_its_records_for_evaluate(
    finished, shared_cache, tmp_path, capfd, monkeypatch
):
    config_before = (finished / ".hydra" / "config.yaml").read_bytes()
    result = train_cli(finished, shared_cache, capfd, monkeypatch, f"data.dir={tmp_path}/nope")
    assert result.code == 1 and "holds a finished run" in result.stderr
    assert (finished / ".hydra" / "config.yaml").read_bytes() == config_before
    assert b"/nope" not in (finished / ".hydra" / "overrides.yaml").read_bytes()


@pytest.mark.parametrize(
    "change, diff",
    [
        (
            "attention=multiplicative",
            'attention.name: "additive" there, "multiplicative" here',
        ),
        ("model.hidden_size=32", "model.hidden_size: 24 there, 32 here"),
        # validation BLEU on another scale would pick best.pt against the earlier validations
        ("bleu.tokenize=char", 'bleu.tokenize: "13a" there, "char" here'),
    ],
)
def test_a_failed_resume_changes_nothing(
    unfinished, shared_cache, capfd, monkeypatch, change, diff
):
    before = tree(unfinished)
    result = train_cli(unfinished, shared_cache, capfd, monkeypatch, "trainer.resume=true", change)
    assert_one_error_line(
        result,
        f"cannot resume {unfinished}: its last.pt was trained with other settings (",
        prefix=True,
    )
    line = result.error_lines[0]
    assert diff in line and line.endswith(
        "); nothing was changed: resume with the run's model, attention, data, seed and bleu, or train "
        "into another hydra.run.dir"
    )
    assert tree(unfinished) == before  # no metrics.json "failed", the .hydra/ records kept
    assert inspect(unfinished).holds is Holds.unfinished


def test_a_failed_start_in_a_new_directory_is_recorded_as_failed(
    tmp_path, shared_cache, capfd, monkeypatch
):
    run_dir = tmp_path / "new"
    result = train_cli(run_dir, shared_cache, capfd, monkeypatch, f"data.dir={tmp_path}/nope")
    assert result.code == 1
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "failed"
    assert inspect(run_dir).holds is Holds.failed
    assert not (run_dir / LOCK_NAME).exists()


# ---------------------------------------------------------------- 4./5. interrupts


def signal_at_step(monkeypatch, signum: int, step: int) -> None:
    """Send ``signum`` to this process inside the ``step``-th training step."""
    real, calls = loop.train_step, {"n": 0}

    def step_then_signal(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == step:
            os.kill(os.getpid(), signum)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", step_then_signal)


def signal_in_test(monkeypatch, signum: int) -> None:
    """Send ``signum`` while the final test decodes (once)."""
    real, calls = recipe.evaluate_model, {"n": 0}

    def decode_then_signal(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            os.kill(os.getpid(), signum)
        return real(*args, **kwargs)

    monkeypatch.setattr(recipe, "evaluate_model", decode_then_signal)


def resume_args(stderr: str, run_dir: Path) -> list[str]:
    """The arguments of the printed resume command (checked to be the exact command)."""
    line = next(line for line in stderr.splitlines() if "resume with: " in line)
    command = shlex.split(line.split("resume with: ", 1)[1])
    assert command[0] == "seq2seq-train"
    assert command[-2:] == [f"hydra.run.dir={run_dir.resolve()}", "trainer.resume=true"]
    return command[1:]


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_in_training_exits_non_zero_with_the_resume_command(
    tmp_path, shared_cache, capfd, monkeypatch, signum, code
):
    run_dir = tmp_path / "run"
    signal_at_step(monkeypatch, signum, 3)
    result = train_cli(run_dir, shared_cache, capfd, monkeypatch, "trainer.max_steps=6")
    assert result.code == code, result.stderr[-2000:]
    name = signal.Signals(signum).name
    assert f"interrupted (signal {name}) at step 3: checkpoints/last.pt is saved" in result.stderr
    args = resume_args(result.stderr, run_dir)
    assert "trainer.max_steps=6" in args and f"data.cache_dir={shared_cache}" in args
    assert not (run_dir / "metrics.json").exists() and not (run_dir / LOCK_NAME).exists()

    monkeypatch.setattr(loop, "train_step", REAL_STEP)
    resumed = run_main("train", args, capfd, monkeypatch)
    assert resumed.code == 0, resumed.stderr[-2000:]
    assert history_steps(run_dir) == [2, 4, 6]  # every validation once
    assert json.loads((run_dir / "metrics.json").read_text())["steps"] == 6


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_in_the_final_test_exits_non_zero_and_the_test_resumes(
    tmp_path, shared_cache, capfd, monkeypatch, signum, code
):
    run_dir = tmp_path / "run"
    signal_in_test(monkeypatch, signum)
    result = train_cli(run_dir, shared_cache, capfd, monkeypatch)
    assert result.code == code, result.stderr[-2000:]
    name = signal.Signals(signum).name
    assert f"interrupted (signal {name} in the final test) at step 4" in result.stderr
    assert not (run_dir / "metrics.json").exists()
    steps = history_steps(run_dir)
    assert steps == [2, 4]

    monkeypatch.setattr(recipe, "evaluate_model", REAL_EVALUATE)
    resumed = run_main("train", resume_args(result.stderr, run_dir), capfd, monkeypatch)
    assert resumed.code == 0, resumed.stderr[-2000:]
    assert history_steps(run_dir) == steps  # not trained on, no validation twice
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["steps"] == 4
    assert (run_dir / "hyps" / "test.txt").is_file()
