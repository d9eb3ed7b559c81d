"""Missing, truncated, foreign and malicious checkpoints: refused with one line, nothing lost.

Through seq2seq-evaluate / seq2seq-translate (``run_dir=``) and seq2seq-train's
``trainer.resume=true``, all run in this process as their console scripts would run them.
"""

from __future__ import annotations

import json

import torch

from tests.cli.runner import assert_one_error_line, run_main
from tests.conftest import TINY_TRANSFORMER, tiny_overrides

FAST_EVAL = ["device=cpu", "limit=2", "decode.beam_size=1"]


class Exploit:
    """Unpickling this runs code: exec writes a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def resume(run_dir, shared_cache, capfd, monkeypatch, *extra):
    argv = tiny_overrides(shared_cache, *extra, f"hydra.run.dir={run_dir}", "trainer.resume=true")
    return run_main("train", argv, capfd, monkeypatch)


def snapshot(run_dir):
    """Bytes of everything a failed resume must leave alone."""
    files = ["checkpoints/best.pt", "checkpoints/last.pt", "metrics.json", "hyps/test.txt"]
    return {name: (run_dir / name).read_bytes() for name in files if (run_dir / name).is_file()}


def test_missing_checkpoint(tiny_run, capfd, monkeypatch):
    run = tiny_run()
    for ckpt in (run / "checkpoints").glob("*.pt"):
        ckpt.unlink()
    result = run_main("evaluate", [f"run_dir={run}", *FAST_EVAL], capfd, monkeypatch)
    assert_one_error_line(
        result,
        f"no checkpoint {run / 'checkpoints' / 'best.pt'}: the run has not saved one (train it first)",
    )
    result = run_main(
        "translate", [f"run_dir={run}", "checkpoint=last"], capfd, monkeypatch, stdin=b"Hallo\n"
    )
    assert_one_error_line(
        result,
        f"no checkpoint {run / 'checkpoints' / 'last.pt'}: the run has not saved one (train it first)",
    )


def test_truncated_checkpoint_and_the_other_one_still_works(tiny_run, capfd, monkeypatch):
    run = tiny_run()
    best = run / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    result = run_main("evaluate", [f"run_dir={run}", *FAST_EVAL], capfd, monkeypatch)
    assert_one_error_line(
        result,
        f"checkpoint {best} is truncated or corrupt (RuntimeError); "
        "use another checkpoint of the run (checkpoint=NAME, one of: last) or retrain",
    )
    ok = run_main("evaluate", [f"run_dir={run}", "checkpoint=last", *FAST_EVAL], capfd, monkeypatch)
    assert ok.code == 0, ok.stderr[-3000:]


def test_resume_from_a_truncated_last_checkpoint(tiny_run, shared_cache, capfd, monkeypatch):
    run = tiny_run()
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    before = snapshot(run)
    result = resume(run, shared_cache, capfd, monkeypatch, "trainer.max_steps=6")
    assert_one_error_line(
        result, f"checkpoint {last} is truncated or corrupt (RuntimeError); ", prefix=True
    )
    assert snapshot(run) == before


def test_resume_with_another_model_family(tiny_run, shared_cache, capfd, monkeypatch):
    run = tiny_run(*TINY_TRANSFORMER)
    before = snapshot(run)
    result = resume(run, shared_cache, capfd, monkeypatch, "trainer.max_steps=6")  # model=rnn
    assert_one_error_line(
        result,
        f"cannot resume {run}: its last.pt was trained with other settings "
        '(model.name: "transformer" there, "rnn" here; ',
        prefix=True,
    )
    assert snapshot(run) == before  # the finished run's metrics.json is not overwritten
    assert json.loads((run / "metrics.json").read_text())["status"] == "finished"


def test_resume_with_another_vocabulary(tiny_run, shared_cache, capfd, monkeypatch):
    run = tiny_run(*TINY_TRANSFORMER)
    before = snapshot(run)
    result = resume(run, shared_cache, capfd, monkeypatch, *TINY_TRANSFORMER, "data.vocab.size=280")
    assert_one_error_line(
        result,
        f"cannot resume {run}: its last.pt was trained with other settings "
        "(data.vocab.size: 300 there, 280 here); nothing was changed: resume with the run's "
        "model, attention, data, seed and bleu, or train into another hydra.run.dir",
    )
    assert snapshot(run) == before


def test_a_pickle_that_would_execute_code_is_refused_everywhere(
    tiny_run, shared_cache, tmp_path, capfd, monkeypatch
):
    marker = tmp_path / "PWNED"
    run = tiny_run()
    for name in ("best.pt", "last.pt"):
        torch.save({"model": {}, "progress": Exploit(marker)}, run / "checkpoints" / name)
    refused = (
        "holds objects other than tensors and plain containers (here exec), so it is not "
        "loaded: safe (weights_only) loading never runs a pickle's code"
    )

    result = run_main("evaluate", [f"run_dir={run}", *FAST_EVAL], capfd, monkeypatch)
    assert_one_error_line(result, f"checkpoint {run / 'checkpoints' / 'best.pt'} {refused}")
    result = run_main("translate", [f"run_dir={run}"], capfd, monkeypatch, stdin=b"Hallo\n")
    assert_one_error_line(result, f"checkpoint {run / 'checkpoints' / 'best.pt'} {refused}")
    result = resume(run, shared_cache, capfd, monkeypatch, "trainer.max_steps=6")
    assert_one_error_line(
        result, f"checkpoint {run / 'checkpoints' / 'last.pt'} {refused}; nothing was changed"
    )

    assert not marker.exists()  # the side effect never happened
    assert json.loads((run / "metrics.json").read_text())["status"] == "finished"
