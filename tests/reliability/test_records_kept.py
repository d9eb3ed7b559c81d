"""Nothing recorded is lost or replaced without a word: contradictory training options are
refused before anything is touched, a resume of a finished run changes nothing, and an
evaluation record is never silently replaced, shared by two writers, or left empty."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from seq2seq.evaluation import evaluate as evaluate_module
from tests.cli.runner import assert_one_error_line, run_main
from tests.conftest import needs_multi30k, tiny_overrides
from tests.reliability.test_run_directory import tree

pytestmark = needs_multi30k


# ---------------------------------------------------------------- training


def test_overwrite_with_resume_is_refused_and_keeps_a_finished_run(
    finished, shared_cache, capfd, monkeypatch
):
    (finished / "eval" / "kept").mkdir(parents=True)
    (finished / "eval" / "kept" / "metrics.json").write_text("{}")
    before = tree(finished)
    argv = tiny_overrides(
        shared_cache, f"hydra.run.dir={finished}", "trainer.overwrite=true", "trainer.resume=true"
    )
    result = run_main("train", argv, capfd, monkeypatch)
    assert_one_error_line(
        result,
        "trainer.resume=true and trainer.overwrite=true contradict each other (resume continues "
        "the run, overwrite deletes it); nothing was changed: keep one of them",
    )
    assert tree(finished) == before


def test_the_api_refuses_overwrite_with_resume_too(finished, shared_cache):
    from seq2seq.errors import ConfigError
    from seq2seq.training import train
    from tests.conftest import compose_config

    before = tree(finished)
    cfg = compose_config(
        *tiny_overrides(
            shared_cache, f"run_dir={finished}", "trainer.overwrite=true", "trainer.resume=true"
        )
    )
    with pytest.raises(ConfigError, match="contradict each other"):
        train(cfg)
    assert tree(finished) == before


def test_resuming_a_finished_run_changes_nothing(finished, shared_cache, capfd, monkeypatch):
    before = tree(finished)
    argv = tiny_overrides(shared_cache, f"hydra.run.dir={finished}", "trainer.resume=true")
    result = run_main("train", argv, capfd, monkeypatch)
    assert result.code == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert (
        f"{finished} already ended at step 4 (max_steps=4): nothing to do, nothing was changed; "
        "raise trainer.max_steps (or max_epochs, max_time) to continue it" in result.stderr
    )
    assert tree(finished) == before  # wall_time_s, history, checkpoints, tb, hyps, records


# ---------------------------------------------------------------- evaluation records


def evaluate_cli(run_dir: Path, capfd, monkeypatch, *extra: str):
    argv = [f"run_dir={run_dir}", "device=cpu", "limit=4", "name=same", *extra]
    return run_main("evaluate", argv, capfd, monkeypatch)


def test_a_second_evaluate_with_other_options_is_refused(finished, capfd, monkeypatch):
    first = evaluate_cli(finished, capfd, monkeypatch, "decode.beam_size=2")
    assert first.code == 0, first.stderr[-2000:]
    record = finished / "eval" / "same"
    before = tree(record)
    second = evaluate_cli(finished, capfd, monkeypatch, "decode.beam_size=1")
    assert_one_error_line(
        second,
        f"{record} holds an evaluation with other options (decode.beam_size: 2 there, 1 here); "
        f"nothing was changed: give another name=NAME, or remove {record} to redo it",
    )
    assert tree(record) == before
    # the advice works: another name
    third = evaluate_cli(finished, capfd, monkeypatch, "decode.beam_size=1", "name=other")
    assert third.code == 0, third.stderr[-2000:]
    assert json.loads((finished / "eval" / "other" / "metrics.json").read_text())["beam_size"] == 1
    # the same options again: the record is redone whole, not refused
    again = evaluate_cli(finished, capfd, monkeypatch, "decode.beam_size=2")
    assert again.code == 0, again.stderr[-2000:]
    assert sorted(p.name for p in (finished / "eval").iterdir()) == ["other", "same"]


def test_an_old_record_without_options_is_compared_on_its_beam(finished, capfd, monkeypatch):
    record = finished / "eval" / "same"
    record.mkdir(parents=True)
    (record / "metrics.json").write_text(json.dumps({"beam_size": 5, "alpha": 0.6}))
    result = evaluate_cli(finished, capfd, monkeypatch, "decode.beam_size=1")
    assert_one_error_line(
        result,
        f"{record} holds an evaluation with other options (decode.beam_size: 5 there, 1 here); "
        f"nothing was changed: give another name=NAME, or remove {record} to redo it",
    )


def test_two_evaluates_of_one_name_cannot_both_write(finished, capfd, monkeypatch):
    """A live writer of eval/same (its lock) refuses the second; nothing of it is left."""
    (finished / "eval").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = finished / "eval" / ".same.lock"
        lock.write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename, "since": "T"}))
        result = evaluate_cli(finished, capfd, monkeypatch)
        assert_one_error_line(
            result,
            f"{finished / 'eval' / 'same'} is being written by pid {holder.pid} on "
            f"{os.uname().nodename} since T (one evaluate per name at a time); nothing was "
            "changed: wait for it, or give another name=NAME",
        )
        assert sorted(p.name for p in (finished / "eval").iterdir()) == [".same.lock"]
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its stale lock is taken over
    result = evaluate_cli(finished, capfd, monkeypatch)
    assert result.code == 0, result.stderr[-2000:]
    assert sorted(p.name for p in (finished / "eval").iterdir()) == ["same"]


def test_a_failed_evaluate_leaves_no_record(finished, capfd, monkeypatch):
    def fail(*args, **kwargs):
        raise ValueError("decoding failed")

    monkeypatch.setattr(evaluate_module, "evaluate_model", fail)
    result = evaluate_cli(finished, capfd, monkeypatch)
    assert_one_error_line(result, "decoding failed")
    assert not (finished / "eval").exists()


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_evaluate_leaves_no_record_and_says_so(
    finished, capfd, monkeypatch, signum, code
):
    real = evaluate_module.evaluate_model

    def interrupt(*args, **kwargs):
        os.kill(os.getpid(), signum)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "evaluate_model", interrupt)
    result = evaluate_cli(finished, capfd, monkeypatch)
    assert result.code == code, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    name = signal.Signals(signum).name
    assert result.stderr.strip().splitlines()[-1] == (
        f"interrupted (signal {name}) during seq2seq-evaluate: no record was written; "
        "run the same command again"
    )
    assert not (finished / "eval").exists()


def test_a_read_only_run_directory_is_one_line(finished, capfd, monkeypatch):
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if self.name == "eval":
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    result = evaluate_cli(finished, capfd, monkeypatch)
    assert_one_error_line(
        result,
        f"cannot write {finished / 'eval' / 'same'} (Read-only file system): evaluate a "
        f"writable copy of the run (cp -r {finished} COPY, then seq2seq-evaluate run_dir=COPY ...)",
    )


@pytest.mark.parametrize("empty", ["src", "both"])
def test_an_empty_source_file_is_one_line_and_leaves_nothing(
    finished, tmp_path, capfd, monkeypatch, empty
):
    src, ref = tmp_path / "s.de", tmp_path / "r.en"
    src.write_text("")
    ref.write_text("" if empty == "both" else "")
    extra = [f"src_file={src}"] + ([f"ref_file={ref}"] if empty == "both" else [])
    result = evaluate_cli(finished, capfd, monkeypatch, *extra)
    assert_one_error_line(
        result, f"{src} has no lines: nothing to evaluate (one sentence per line)"
    )
    assert not (finished / "eval").exists()


@pytest.mark.parametrize("name", ["../checkpoints", "a/b", ".hidden", ".."])
def test_a_record_name_outside_eval_is_refused_and_touches_nothing(
    finished, capfd, monkeypatch, name
):
    """name=../checkpoints would have replaced the run's checkpoints with a record."""
    before = tree(finished)
    result = evaluate_cli(finished, capfd, monkeypatch, f"name={name}")
    assert_one_error_line(
        result,
        f"name must be a plain folder name under eval/ (no '/', not starting with '.'), "
        f"got {name!r}",
    )
    assert tree(finished) == before
