"""Every console script answers --help (and --cfg job where a config applies) at once, without
reading stdin; seq2seq-train --cfg job --resolve works before any run directory exists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    """Run a console script's entry point with stdin open and never written: a script that
    read it would block until the timeout."""
    module, _, function = SCRIPTS[name].partition(":")
    code = f"import sys; sys.argv[0] = {name!r}; from {module} import {function}; {function}()"
    with subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        cwd=REPO,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"{name} {' '.join(args)} did not return (reading stdin?)")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_console_script_answers_help(name):
    result = run_script(name, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "name, args, expected",
    [
        ("seq2seq-train", ["decode.beam_size=3"], "beam_size: 3"),
        ("seq2seq-evaluate", ["run_dir=somewhere", "decode.beam_size=3"], "beam_size: 3"),
        ("seq2seq-prepare", ["data.src=en", "data.tgt=fr"], "tgt: fr"),
        ("seq2seq-translate", ["run_dir=somewhere", "decode.beam_size=3"], "beam_size: 3"),
        ("seq2seq-export", ["run_dir=somewhere", "quantization=int8"], "quantization: int8"),
    ],
)
def test_cfg_job_prints_the_composed_config(name, args, expected):
    result = run_script(name, "--cfg", "job", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert expected in result.stdout.splitlines() or f"  {expected}" in result.stdout


def test_train_cfg_job_resolve_shows_a_placeholder_run_dir():
    result = run_script("seq2seq-train", "--cfg", "job", "--resolve")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "run_dir: <hydra.run.dir, created when the job starts>" in result.stdout
    assert "${" not in result.stdout  # everything resolved


def test_an_unknown_flag_is_one_line():
    result = run_script("seq2seq-prepare", "--bogus")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: unknown flag --bogus: valid flags are -h/--help, --cfg job, --resolve"
    )
