"""trainer.keep_last=N keeps the last N validations' weights; seq2seq-average averages them into
a checkpoint that evaluate loads; the average is the element-wise mean."""

from __future__ import annotations

import json

import pytest
import torch

from seq2seq.checkpoint import average_checkpoints, load_checkpoint, step_checkpoints
from tests.cli.runner import assert_one_error_line, run_main
from tests.conftest import needs_multi30k


@pytest.fixture
def kept_run(tiny_run):
    """This test's copy of a 10-step run that keeps its last 3 validations' weights."""
    return tiny_run("trainer.max_steps=10", "trainer.keep_last=3")


@needs_multi30k
def test_keep_last_keeps_the_newest_weights_only(kept_run):
    steps = [step for step, _ in step_checkpoints(kept_run / "checkpoints")]
    assert steps == [6, 8, 10]  # validations at 2, 4, ..., 10; the last 3 kept
    payload = load_checkpoint(kept_run / "checkpoints" / "step_10.pt")
    assert "optimizer" not in payload and payload["progress"]["step"] == 10
    last = load_checkpoint(kept_run / "checkpoints" / "last.pt")
    for key, tensor in last["model"].items():
        assert torch.equal(payload["model"][key], tensor), key


@needs_multi30k
def test_average_is_the_mean_and_evaluate_loads_it(kept_run, capfd, monkeypatch):
    result = run_main("average", [f"run_dir={kept_run}", "last=3"], capfd, monkeypatch)
    assert result.code == 0, result.stderr
    out = kept_run / "checkpoints" / "avg_last3.pt"
    assert f"averaged steps 6, 8, 10 -> {out}" in result.stdout
    averaged = load_checkpoint(out)
    parts = [load_checkpoint(kept_run / "checkpoints" / f"step_{s}.pt") for s in (6, 8, 10)]
    for key, tensor in averaged["model"].items():
        mean = sum(p["model"][key].double() for p in parts) / 3
        torch.testing.assert_close(tensor.double(), mean, rtol=0, atol=1e-6)
    assert averaged["averaged"] == ["step_6.pt", "step_8.pt", "step_10.pt"]

    result = run_main(
        "evaluate",
        [f"run_dir={kept_run}", "checkpoint=avg_last3", "device=cpu", "limit=4", "name=avg"],
        capfd,
        monkeypatch,
    )
    assert result.code == 0, result.stderr[-2000:]
    metrics = json.loads((kept_run / "eval" / "avg" / "metrics.json").read_text())
    assert metrics["checkpoint"].endswith("avg_last3.pt")


@needs_multi30k
@pytest.mark.parametrize(
    "args, expected",
    [
        (["last=3"], "run_dir=DIR is required: the directory of a training run"),
        (["run_dir={run}", "last=9"], "has 3 step checkpoints (step_<N>.pt), fewer than last=9"),
        (["run_dir={run}", "name=best"], "name=best would replace a training checkpoint"),
        (["run_dir={run}", "lastt=2"], "unknown argument 'lastt=2': give run_dir=, last=, name="),
    ],
)
def test_bad_arguments_are_one_line(kept_run, capfd, monkeypatch, args, expected):
    argv = [a.format(run=kept_run) for a in args]
    result = run_main("average", argv, capfd, monkeypatch)
    assert_one_error_line(result, "", prefix=True)
    assert expected in result.error_lines[0]


def test_average_refuses_different_shapes(tmp_path):
    from seq2seq.checkpoint import save_checkpoint
    from seq2seq.errors import CheckpointError

    for name, size in (("a", 2), ("b", 3)):
        save_checkpoint({"model": {"w": torch.zeros(size)}, "config": {}}, tmp_path / f"{name}.pt")
    with pytest.raises(CheckpointError, match="its weight w differs"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"])
