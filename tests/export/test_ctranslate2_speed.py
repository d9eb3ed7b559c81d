"""benchmarks/ctranslate2_speed.py on a tiny learned run: one process exports float32 and int8,
decodes with ours and both CTranslate2 models, and reports speed and BLEU for each."""

from __future__ import annotations

import importlib.util
import json

import pytest

from benchmarks.ctranslate2_speed import ENGINES, main

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("ctranslate2") is None, reason="no ctranslate2"),
    pytest.mark.slow,
    pytest.mark.usefixtures("one_thread"),  # threads= sets torch's; the fixture restores it
]


def test_one_run_reports_every_engine(learned_run, tmp_path, capsys):
    out = tmp_path / "bench.json"
    result = main(
        [
            f"run_dir={learned_run}",
            "limit=4",
            "decode.batch_size=2",
            "decode.beam_size=1",
            "threads=2",
            f"out={out}",
        ]
    )
    assert json.loads(out.read_text()) == result
    rows = result["results"]
    assert list(rows) == list(ENGINES)
    assert result["sentences"] == 4 and result["beam_size"] == 1
    for row in rows.values():
        assert row["sentences_per_s"] > 0 and row["output_tokens_per_s"] > 0
        assert 0 <= row["bleu"] <= 100
    assert rows["ours"]["speed_vs_ours"] == 1.0
    # the Translators (intra_threads=1) share torch's OpenMP count: ours kept its 2 threads
    assert result["threads"] == rows["ours"]["torch_threads"] == 2
    expected = rows["ctranslate2_int8"]["output_tokens_per_s"] / rows["ours"]["output_tokens_per_s"]
    assert rows["ctranslate2_int8"]["speed_vs_ours"] == pytest.approx(expected, abs=0.01)
    # greedy (beam ranking differs between the two by design): the learned pairs win every
    # step by a wide margin, so float32 gives the same translations
    assert rows["ctranslate2_float32"]["bleu"] == rows["ours"]["bleu"] > 50
    assert rows["ctranslate2_float32"]["output_tokens"] == rows["ours"]["output_tokens"]
    assert (
        rows["ctranslate2_int8"]["model_bin_bytes"] < rows["ctranslate2_float32"]["model_bin_bytes"]
    )
    table = capsys.readouterr().out
    assert "| engine | sentences/s | tokens/s | vs ours | BLEU |" in table
    assert all(f"| {name} |" in table for name in ENGINES)
