"""seq2seq-compare --export: small summaries of runs that rebuild the same report."""

from __future__ import annotations

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
