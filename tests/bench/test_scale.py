"""benchmarks/scale.py on a slice of Multi30k: every figure of its row comes from real runs and
agrees with the pipeline it measures."""

from __future__ import annotations

import json

import pytest

from benchmarks.scale import COLUMNS, main
from seq2seq.data.batching import BatchPlan, sequence_lengths
from seq2seq.data.pipeline import prepare_data
from tests.conftest import compose_config, needs_multi30k

CORPUS = "data=multi30k data.train_limit=600"
TRAINING = (
    "model=rnn model.emb_size=16 model.hidden_size=24 trainer.device=cpu trainer.num_threads=1 "
    "trainer.max_epochs=null trainer.val_every=1000 logger=off data.eval_limit=8 "
    "decode.beam_size=1 data.max_tokens=512"
)


@pytest.mark.slow
@needs_multi30k
def test_a_small_scale_run_reports_consistent_figures(shared_cache, tmp_path, capsys):
    out = tmp_path / "scale.json"
    results = main(
        [
            "trainer.max_steps=3",
            *TRAINING.split(),
            f"data.cache_dir={shared_cache}",
            "data.vocab.size=300",
            "corpus=m30k-600",
            *CORPUS.split(),
            "--work-dir",
            str(tmp_path / "work"),
            "--out",
            str(out),
        ]
    )
    assert json.loads(out.read_text()) == results
    [row] = results["corpora"]
    printed = capsys.readouterr().out
    assert "| " + " | ".join(COLUMNS) + " |" in printed and "| m30k-600 |" in printed
    # the pairs and tokens are the prepared training split's; batches its epoch-0 plan's
    overrides = [*CORPUS.split(), f"data.cache_dir={shared_cache}", "data.vocab.size=300"]
    cfg = compose_config(*overrides)
    train = prepare_data(cfg.data, splits=("train",)).splits["train"]
    assert row["train_pairs"] == len(train) and 590 <= len(train) <= 600
    tokens = sequence_lengths(train.src_ids).sum() + sequence_lengths(train.tgt_ids).sum()
    assert row["train_tokens"] == tokens
    plan = BatchPlan(train.src_ids, train.tgt_ids, max_tokens=512, seed=cfg.trainer.seed)
    assert row["batches_per_epoch"] == plan.num_batches(0)
    assert row["steps"] == 3
    for key in ("prepare_peak_rss_mb", "train_peak_rss_mb", "data_side_peak_rss_mb"):
        assert 50 < row[key] < 4000, key
    assert row["prepare_s"] > 0 and row["model_step_ms"] > 0 and row["collate_ms"] > 0
    step_s = (row["model_step_ms"] + row["collate_ms"]) / 1000
    assert row["steps_per_s"] == pytest.approx(1 / step_s, rel=0.02)
    epoch_s = row["batches_per_epoch"] * step_s + row["epoch_plan_s"]
    assert row["epoch_min"] == pytest.approx(epoch_s / 60, abs=0.01)
    assert (tmp_path / "work" / "m30k-600" / "run" / "metrics.json").is_file()
