"""Attention diagnostics of hand-made matrices."""

from __future__ import annotations

import pytest

from tests.compare.fake_runs import ONE_HOT, UNIFORM, fake_run


def test_attention_diagnostics_of_hand_made_matrices(tmp_path, corpus):
    from seq2seq.compare import attention_diagnostics, matrix_rows

    rows = matrix_rows([[1, 0, 0], [0, 1, 0]])
    assert rows["entropy"].tolist() == [0, 0] and rows["max_weight"].tolist() == [1, 1]
    assert matrix_rows([[0.5, 0.5]])["entropy"].tolist() == pytest.approx([1.0])
    run = fake_run(tmp_path, "run", corpus, matrices=[ONE_HOT, UNIFORM])
    # pooled over the 5 rows: entropies 0 0 0 1 1, max 1 1 1 .25 .25, EOS weights 0 0 1 .25 .25
    assert attention_diagnostics(run / "alignments") == pytest.approx(
        {"entropy": 0.4, "max_weight": 0.7, "saturated": 0.6, "eos_mass": 0.3, "rows": 5}
    )
    assert attention_diagnostics(tmp_path / "nowhere") is None
