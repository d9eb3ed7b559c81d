"""logger=tensorboard|wandb|mlflow|off: the same scalars reach each, offline (W&B offline mode,
MLflow's file store in the run directory)."""

from __future__ import annotations

import json

import pytest

from seq2seq.errors import ConfigError
from seq2seq.training import train
from seq2seq.training.logger import NullLogger, make_logger
from tests.conftest import compose_config, needs_multi30k, tiny_overrides


def history(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


@needs_multi30k
def test_tensorboard_receives_the_scalars_and_the_heatmaps(shared_cache, tmp_path):
    """The default logger: every validation's scalars, and trainer.heatmaps attention images
    (the first validation sentences) at every validation step."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    train(compose_config(*tiny_overrides(shared_cache, f"run_dir={run_dir}", "trainer.heatmaps=2")))
    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"images": 0}).Reload()
    steps = [h["step"] for h in history(run_dir)]
    bleu = [(e.step, e.value) for e in events.Scalars("valid/bleu")]
    assert bleu == [(h["step"], pytest.approx(h["val_bleu"])) for h in history(run_dir)]
    assert sorted(t for t in events.Tags()["images"]) == ["attention/val_0", "attention/val_1"]
    for tag in ("attention/val_0", "attention/val_1"):
        images = events.Images(tag)
        assert [image.step for image in images] == steps
        assert all(image.encoded_image_string.startswith(b"\x89PNG") for image in images)
        assert all(image.width > 100 and image.height > 100 for image in images)


@needs_multi30k
def test_mlflow_receives_the_validation_scalars(shared_cache, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    run_dir = tmp_path / "run"
    train(compose_config(*tiny_overrides(shared_cache, f"run_dir={run_dir}", "logger=mlflow")))
    client = MlflowClient((run_dir / "mlruns").resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "seq2seq"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    bleu = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "valid/bleu")]
    assert sorted(bleu) == [(h["step"], pytest.approx(h["val_bleu"])) for h in history(run_dir)]
    assert run.data.params["attention.name"] == "additive"
    assert not (run_dir / "tb").exists()  # one logger, the one asked for


@needs_multi30k
def test_wandb_offline_run_records_the_scalars_and_config(shared_cache, tmp_path, monkeypatch):
    """An offline run is one protobuf log (run-*.wandb, read back only by `wandb sync`): the
    scalar names and the config's values are in it, once per logged step for train/loss; the
    heatmaps are PNG files beside it."""
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = tmp_path / "run"
    train(
        compose_config(
            *tiny_overrides(
                shared_cache, f"run_dir={run_dir}", "logger=wandb", "trainer.heatmaps=1"
            )
        )
    )
    # wandb's service process writes the log; a seq2seq-train process ends it at exit, this
    # long-lived test process must end it itself before reading (read before, on a loaded
    # machine, the log held its header alone: 3 times in CI and helpers' runs)
    wandb.teardown()
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    (log,) = offline.glob("run-*.wandb")
    data = log.read_bytes()
    assert data.count(b"train/loss") >= 4  # every step of 4 (log_every=1)
    assert data.count(b"valid/bleu") >= len(history(run_dir))
    assert b"additive" in data and b"hidden_size" in data  # the run config
    # the attention heatmaps as images, also where nothing imported matplotlib.pyplot
    images = list((offline / "files" / "media" / "images" / "attention").glob("*.png"))
    assert images and all(p.read_bytes().startswith(b"\x89PNG") for p in images)


def test_off_logs_nothing_and_an_unknown_extra_names_its_install(tmp_path, monkeypatch):
    cfg = compose_config("logger=off").logger
    assert isinstance(make_logger(cfg, tmp_path, is_main=True, config={}), NullLogger)
    assert isinstance(
        make_logger(compose_config("logger=wandb").logger, tmp_path, is_main=False, config={}),
        NullLogger,
    )
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    with pytest.raises(ConfigError) as err:
        make_logger(compose_config("logger=wandb").logger, tmp_path, is_main=True, config={})
    assert str(err.value) == (
        "logger=wandb needs the wandb package: pip install 'seq2seq[wandb]' "
        "(or choose logger=tensorboard)"
    )
