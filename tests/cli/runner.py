"""Running our commands in tests: ``run_main`` calls an entry point's ``main()`` in this process
(fast: no interpreter start, no second torch import); ``run_command`` runs it in a subprocess,
for what needs a process of its own (a Hydra multirun's launchers, environment variables read at
import, a real exit)."""

from __future__ import annotations

import importlib
import io
import logging
import os
import subprocess
import sys
from dataclasses import dataclass

from hydra.core.global_hydra import GlobalHydra


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


def run_main(module: str, argv: list[str], capfd, monkeypatch, stdin: bytes | None = None):
    """Call ``seq2seq.cli.<module>.main()`` as its console script would, in this process.

    Returns the exit code and what went to stdout/stderr (file-descriptor level, so Hydra's
    own printing is captured too). Logging handlers Hydra installs are removed afterwards.
    """
    mod = importlib.import_module(f"seq2seq.cli.{module}")
    monkeypatch.setattr(sys, "argv", [f"seq2seq-{module}", *argv])
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    GlobalHydra.instance().clear()
    capfd.readouterr()
    code = 0
    try:
        mod.main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        GlobalHydra.instance().clear()
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(level)
    out, err = capfd.readouterr()
    return Result(code, out, err)


def assert_one_error_line(result: Result, expected: str, *, prefix: bool = False) -> None:
    """Exit code 1, exactly one ``error:`` line (``expected``), no traceback."""
    assert result.code == 1, (result.code, result.stderr[-3000:])
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    assert len(result.error_lines) == 1, result.stderr[-3000:]
    line = result.error_lines[0]
    if prefix:
        assert line.startswith(f"error: {expected}"), line
    else:
        assert line == f"error: {expected}", line


def run_command(
    command: str, *args: str, stdin: str | None = None, env: dict | None = None, timeout=600
) -> subprocess.CompletedProcess:
    """``python -m seq2seq.cli.<command> ARGS`` (text stdin/stdout/stderr, unbuffered; ``env``
    adds to this process's environment)."""
    return subprocess.run(
        [sys.executable, "-m", f"seq2seq.cli.{command}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ | {"PYTHONUNBUFFERED": "1"} | (env or {}),
    )
