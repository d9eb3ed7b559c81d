"""seq2seq-compare --export: small summaries of runs that rebuild the same report."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np

from seq2seq.compare import compare


def test_exported_summaries_rebuild_the_same_report(sweep, tmp_path):
    """seq2seq-compare --export keeps what the report needs (no checkpoints): the report of the
    summaries equals the report of the runs, diagnostics included (saved from the full dump)."""
    from seq2seq.compare.export import export_runs

    (sweep / "1_additive_s1" / "checkpoints").mkdir()
    (sweep / "1_additive_s1" / "checkpoints" / "best.pt").write_bytes(b"weights")
    exported = tmp_path / "exported"
    assert len(export_runs([sweep], exported, keep_matrices=1)) == 5
    run = exported / "sweep" / "1_additive_s1"
    assert not (run / "checkpoints").exists()
    assert (run / "alignments" / "test.diagnostics.json").is_file()
    with np.load(run / "alignments" / "test.npz") as data:
        assert data.files == ["0"]
    full = compare([sweep], tmp_path / "a", n_bootstrap=0)
    summary = compare([exported], tmp_path / "b", n_bootstrap=0)
    drop = ("run_dir",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in summary] == [
        {k: v for k, v in r.items() if k not in drop} for r in full
    ]
    table = lambda out: (out / "comparison.csv").read_text(encoding="utf-8")  # noqa: E731
    assert table(tmp_path / "b") == table(tmp_path / "a")


def test_exported_runs_rebuild_the_report_with_no_corpus_and_no_dataset_cache(
    sweep, corpus, tmp_path
):
    """The report reads only run directories: the summaries keep the test sources and
    references beside the hypotheses, and rebuild the same report (paired bootstrap and BLEU by
    length included) with the corpus gone, SEQ2SEQ_CACHE an empty folder, no data folder, and
    seq2seq.data never imported."""
    from seq2seq.compare.export import export_runs

    exported = tmp_path / "exported"
    export_runs([sweep], exported)
    for name in ("test.txt", "test.src.txt", "test.ref.txt"):
        kept = exported / "sweep" / "3_additive_s2" / "hyps" / name
        assert kept.read_bytes() == (sweep / "3_additive_s2" / "hyps" / name).read_bytes()
    full = tmp_path / "full"
    compare([sweep], full, n_bootstrap=20)
    shutil.rmtree(corpus)
    shutil.rmtree(sweep)

    empty = tmp_path / "empty_cache"
    empty.mkdir()
    out = tmp_path / "rebuilt"
    code = (
        "import json, sys; from seq2seq.compare import compare; "
        f"compare([{str(exported)!r}], {str(out)!r}, n_bootstrap=20); "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('seq2seq'))))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQ2SEQ_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=empty,  # data/cache, the default cache, is not there either
        env=env | {"SEQ2SEQ_CACHE": str(empty), "SEQ2SEQ_DATA": str(tmp_path / "no_data")},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert "seq2seq.compare.report" in loaded
    assert not [m for m in loaded if m.startswith(("seq2seq.data", "seq2seq.training"))], loaded
    assert list(empty.iterdir()) == []  # nothing cached, nothing downloaded

    table = lambda out: (out / "comparison.csv").read_text(encoding="utf-8")  # noqa: E731
    assert table(out) == table(full)
    additive = next(
        r for r in csv.DictReader((out / "comparison.csv").open()) if r["variant"] == "additive"
    )
    assert additive["tested_seeds"] == "2" and additive["p_per_seed"].startswith("1:")
    md = (out / "comparison.md").read_text(encoding="utf-8")
    assert "missing or unreadable" not in md and "not loadable" not in md
    assert (out / "bleu_by_length.png").is_file()
