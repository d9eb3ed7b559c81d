"""Helpers of the reliability tests: run an entry point in-process, write small corpora."""

from __future__ import annotations

import importlib
import io
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from hydra.core.global_hydra import GlobalHydra

from tests.conftest import TINY, TINY_RNN

DE = [
    "Ein Mann fährt Fahrrad.",
    "Zwei Hunde spielen im Schnee.",
    "Eine Frau lacht.",
    "Ein Kind läuft über die Straße.",
    "Drei Männer sitzen auf einer Bank.",
    "Ein Hund schwimmt im See.",
]
EN = [
    "A man rides a bike.",
    "Two dogs play in the snow.",
    "A woman laughs.",
    "A child runs across the street.",
    "Three men sit on a bench.",
    "A dog swims in the lake.",
]
# multi30k's file stems (data=multi30k): {train: train, validation: val, test: test_2016_flickr}
STEMS = {"train": "train", "validation": "val", "test": "test_2016_flickr"}


def write_corpus(directory: Path, *, train_pairs: int = 60, eval_pairs: int = 6) -> Path:
    """A small valid de/en corpus in multi30k's layout (plain text files)."""
    directory.mkdir(parents=True, exist_ok=True)
    sizes = {"train": train_pairs, "validation": eval_pairs, "test": eval_pairs}
    for split, stem in STEMS.items():
        n = sizes[split]
        for lang, lines in (("de", DE), ("en", EN)):
            text = "".join(lines[i % len(lines)] + "\n" for i in range(n))
            (directory / f"{stem}.{lang}").write_text(text, encoding="utf-8")
    return directory


def tiny_overrides(shared_cache: Path, *extra: str) -> list[str]:
    """TINY (+ TINY_RNN unless ``model=transformer`` is among ``extra``) and the shared cache."""
    sizes = [] if "model=transformer" in extra else TINY_RNN
    return [*TINY, *sizes, f"data.cache_dir={shared_cache}", *extra]


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
