"""The run directory's readers (seq2seq.run_files): absent reads as empty, unreadable raises one
line naming the file; metrics.json is written whole or not at all."""

from __future__ import annotations

import json

import pytest
import torch

from seq2seq import run_files
from seq2seq.errors import CheckpointError
from seq2seq.run_files import RunFileError
from seq2seq.training.rundir import Holds, inspect, plan_job


def test_metrics_round_trip_byte_for_byte_and_leave_no_temporary(tmp_path):
    metrics = {"status": "finished", "steps": 4, "test_bleu": 1.5}
    run_files.write_metrics(tmp_path, metrics)
    assert run_files.read_metrics(tmp_path) == metrics
    # the layout every earlier run (and docs/comparison/) has: indent 2, one final newline
    assert (tmp_path / "metrics.json").read_text() == json.dumps(metrics, indent=2) + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_absent_files_read_as_empty(tmp_path):
    assert run_files.read_metrics(tmp_path) == {}
    assert run_files.read_history(tmp_path) == []
    assert run_files.read_hydra_config(tmp_path) == {}


@pytest.mark.parametrize(
    ("name", "text", "reader", "reason"),
    [
        ("metrics.json", '{"status": "fin', run_files.read_metrics, "Unterminated string"),
        ("metrics.json", "[1, 2]", run_files.read_metrics, "not a JSON object"),
        ("history.jsonl", '{"step": 2}\n\n[3]\n', run_files.read_history, "line 3: not a JSON"),
        ("history.jsonl", '{"step": 2}\n{"st', run_files.read_history, "line 2: Unterminated"),
        (".hydra/config.yaml", "- a\n- b\n", run_files.read_hydra_config, "not a mapping"),
    ],
)
def test_an_unreadable_file_raises_one_line_naming_it(tmp_path, name, text, reader, reason):
    (tmp_path / name).parent.mkdir(exist_ok=True)
    (tmp_path / name).write_text(text)
    with pytest.raises(RunFileError) as raised:
        reader(tmp_path)
    assert raised.value.path == tmp_path / name
    assert raised.value.reason.startswith(reason)
    assert str(raised.value).startswith(f"{tmp_path / name} cannot be read (")
    assert "\n" not in str(raised.value)


def test_history_keeps_its_validations_in_order(tmp_path):
    (tmp_path / "history.jsonl").write_text('{"step": 2}\n\n{"step": 4}\n')
    assert run_files.read_history(tmp_path) == [{"step": 2}, {"step": 4}]


def test_a_checkpoint_header_without_its_tensors(tmp_path):
    path = tmp_path / "last.pt"
    config = {"model": {"name": "rnn"}}
    torch.save({"model": {"w": torch.zeros(3)}, "config": config, "progress": {"step": 7}}, path)
    header = run_files.read_checkpoint_header(path)
    assert (header.path, header.config, header.step) == (path, config, 7)
    torch.save({"model": {}}, path)
    with pytest.raises(CheckpointError, match="holds no run config"):
        run_files.read_checkpoint_header(path)


def test_inspect_carries_what_it_read(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    config = {"model": {"name": "rnn"}}
    torch.save({"config": config, "progress": {"step": 3}}, tmp_path / "checkpoints" / "last.pt")
    contents = inspect(tmp_path)
    assert (contents.holds, contents.step, contents.metrics) == (Holds.unfinished, 3, {})
    assert contents.saved.config == config and contents.detail == "checkpoints/last.pt at step 3"


def test_a_sweep_job_refuses_a_directory_whose_metrics_cannot_be_read(tmp_path):
    """Read as absent, the directory would be cleared and trained from scratch."""
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.pt").write_bytes(b"weights")
    (tmp_path / "metrics.json").write_text('{"status": "finished", "test_bl')
    plan = plan_job(tmp_path, {})
    assert plan.action == "refuse"
    assert plan.reason.startswith(f"{tmp_path / 'metrics.json'} cannot be read (")
    assert plan.reason.endswith(": remove it or choose another hydra.sweep.dir")
