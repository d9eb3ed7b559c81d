"""One interrupt rule for every command: SIGINT/SIGTERM end the work with one line saying what
was interrupted and how to continue, exit 130/143, no traceback, nothing recorded as a failure,
and the advice works (the same command again succeeds)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from datasets.packaged_modules.text import text as hf_text

from tests.cli.runner import run_main
from tests.conftest import needs_multi30k, tiny_overrides
from tests.reliability.reliability_tools import write_corpus

pytestmark = needs_multi30k
SIGNALS = [(signal.SIGINT, 130), (signal.SIGTERM, 143)]


def signal_in(monkeypatch, owner, name: str, signum: int) -> None:
    """``owner.name`` sends ``signum`` to this process once, then does its work."""
    real, calls = getattr(owner, name), {"n": 0}

    def then_signal(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            os.kill(os.getpid(), signum)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, then_signal)


def assert_interrupted(result, code: int, line: str) -> None:
    assert result.code == code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    assert "error:" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == line


@pytest.mark.parametrize("signum, code", SIGNALS)
def test_an_interrupt_in_the_first_data_preparation_of_a_training(
    tmp_path, capfd, monkeypatch, signum, code
):
    """datasets wraps the interrupt in DatasetGenerationError: still an interrupt, not a
    failure (no metrics.json status failed), and the same command then trains."""
    corpus = write_corpus(tmp_path / "corpus")
    run_dir = tmp_path / "run"
    argv = tiny_overrides(tmp_path / "cache", f"data.dir={corpus}", f"hydra.run.dir={run_dir}")
    signal_in(monkeypatch, hf_text.Text, "_generate_tables", signum)
    result = run_main("train", argv, capfd, monkeypatch)
    assert_interrupted(
        result,
        code,
        f"interrupted (signal {signal.Signals(signum).name}) during seq2seq-train's start-up "
        "(before the first step): nothing was trained or recorded; run the same command again",
    )
    assert not (run_dir / "metrics.json").exists()
    assert not (run_dir / ".seq2seq.lock").exists()
    monkeypatch.undo()
    again = run_main("train", argv, capfd, monkeypatch)
    assert again.code == 0, again.stderr[-3000:]
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "finished"


@pytest.mark.parametrize("signum, code", SIGNALS)
def test_an_interrupt_in_seq2seq_prepare(tmp_path, capfd, monkeypatch, signum, code):
    corpus = write_corpus(tmp_path / "corpus")
    argv = tiny_overrides(tmp_path / "cache", f"data.dir={corpus}")
    signal_in(monkeypatch, hf_text.Text, "_generate_tables", signum)
    result = run_main("prepare", argv, capfd, monkeypatch)
    assert_interrupted(
        result,
        code,
        f"interrupted (signal {signal.Signals(signum).name}) during seq2seq-prepare (data "
        "preparation): the caches keep complete entries only; run the same command again",
    )
    monkeypatch.undo()
    again = run_main("prepare", argv, capfd, monkeypatch)
    assert again.code == 0, again.stderr[-3000:]
    assert "sentencepiece:" in again.stdout


@pytest.mark.parametrize("signum, code", SIGNALS)
def test_an_interrupt_in_translate(tiny_run, capfd, monkeypatch, signum, code):
    run_dir = tiny_run()
    from seq2seq.evaluation import evaluate

    signal_in(monkeypatch, evaluate, "decode_ids", signum)
    result = run_main(
        "translate", [f"run_dir={run_dir}", "device=cpu"], capfd, monkeypatch, stdin=b"Ein Hund.\n"
    )
    assert_interrupted(
        result,
        code,
        f"interrupted (signal {signal.Signals(signum).name}) during seq2seq-translate: nothing "
        "was printed; run the same command again",
    )
    assert result.stdout == ""


@pytest.mark.parametrize("signum, code", SIGNALS)
def test_an_interrupt_in_average(tiny_run, capfd, monkeypatch, signum, code):
    from seq2seq import checkpoint

    run_dir = tiny_run()
    for step in (2, 4):
        shutil.copy(
            run_dir / "checkpoints" / "best.pt", run_dir / "checkpoints" / f"step_{step}.pt"
        )
    signal_in(monkeypatch, checkpoint, "average_checkpoints", signum)
    result = run_main("average", [f"run_dir={run_dir}", "last=2"], capfd, monkeypatch)
    assert_interrupted(
        result,
        code,
        f"interrupted (signal {signal.Signals(signum).name}) during seq2seq-average: no averaged "
        "checkpoint was written; run the same command again",
    )
    assert not (run_dir / "checkpoints" / "avg_last2.pt").exists()
    monkeypatch.undo()
    again = run_main("average", [f"run_dir={run_dir}", "last=2"], capfd, monkeypatch)
    assert again.code == 0, again.stderr[-3000:]
    assert (run_dir / "checkpoints" / "avg_last2.pt").is_file()


@pytest.mark.parametrize("signum, code", SIGNALS)
def test_an_interrupt_in_export(tiny_run, capfd, monkeypatch, signum, code):
    run_dir = tiny_run()
    ctranslate2 = importlib.import_module("seq2seq.export.ctranslate2")
    signal_in(monkeypatch, ctranslate2, "export_run", signum)
    result = run_main("export", [f"run_dir={run_dir}"], capfd, monkeypatch)
    assert_interrupted(
        result,
        code,
        f"interrupted (signal {signal.Signals(signum).name}) during seq2seq-export: no export "
        "was written; run the same command again",
    )


@pytest.mark.parametrize("signum, code", SIGNALS)
def test_an_interrupt_in_compare(tiny_run, tmp_path, capfd, monkeypatch, signum, code):
    run_dir = tiny_run()
    import seq2seq.compare as compare_package
    from seq2seq.cli import compare as compare_cli

    signal_in(monkeypatch, compare_package, "compare", signum)
    out = tmp_path / "report"
    monkeypatch.setattr("sys.argv", ["seq2seq-compare"])
    capfd.readouterr()
    with pytest.raises(SystemExit) as exit_:
        compare_cli.main([str(run_dir), "--out", str(out)])
    stdout, stderr = capfd.readouterr()
    assert exit_.value.code == code
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"interrupted (signal {signal.Signals(signum).name}) during seq2seq-compare: the report "
        "is written only whole; run the same command again"
    )
    assert not Path(out / "comparison.md").exists()
