"""Attention diagnostics of hand-made matrices; collapse (every target step on one source
piece) told from a sharp alignment that moves."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seq2seq.compare.diagnostics import attention_diagnostics, matrix_rows
from tests.compare.fake_runs import ONE_HOT, UNIFORM, fake_run


def test_attention_diagnostics_of_hand_made_matrices(tmp_path, corpus):
    rows = matrix_rows([[1, 0, 0], [0, 1, 0]])
    assert rows["entropy"].tolist() == [0, 0] and rows["max_weight"].tolist() == [1, 1]
    assert matrix_rows([[0.5, 0.5]])["entropy"].tolist() == pytest.approx([1.0])
    run = fake_run(tmp_path, "run", corpus, matrices=[ONE_HOT, UNIFORM])
    # pooled over the 5 rows: entropies 0 0 0 1 1, max 1 1 1 .25 .25, EOS weights 0 0 1 .25 .25;
    # on the most-attended column: 1 of ONE_HOT's 3 rows (a diagonal), none of UNIFORM's (a
    # row whose weights all tie attends no one piece)
    assert attention_diagnostics(run / "alignments") == pytest.approx(
        {
            "entropy": 0.4,
            "window_entropy": 0.4,
            "row_sum": 1.0,
            "max_weight": 0.7,
            "saturated": 0.6,
            "collapse": 0.2,
            "eos_mass": 0.3,
            "rows": 5,
        }
    )
    assert attention_diagnostics(tmp_path / "nowhere") is None


def pooled(matrix) -> dict[str, float]:
    return {key: float(np.mean(values)) for key, values in matrix_rows(matrix).items()}


def test_a_matrix_stuck_on_one_column_is_collapse():
    stuck = np.full((6, 8), 0.01 / 7)
    stuck[:, 5] = 0.99  # every target step on the source "."
    rows = pooled(stuck)
    assert rows["on_top_column"] == 1.0
    assert rows["max_weight"] == pytest.approx(0.99)  # as saturated as a sharp diagonal


def test_uniform_attention_is_not_collapse():
    # every argmax falls on column 0 only because the weights tie there
    rows = pooled(np.full((7, 7), 1 / 7))
    assert rows["on_top_column"] == 0.0 and rows["entropy"] == pytest.approx(1.0)
    # a row whose top two weights tie counts 0; the others are on the top column
    split = np.array([[0.45, 0.45, 0.1], [0.8, 0.1, 0.1], [0.7, 0.2, 0.1]])
    assert matrix_rows(split)["on_top_column"].tolist() == [0.0, 1.0, 1.0]


@pytest.mark.parametrize("length", [4, 9, 20])
def test_a_diagonal_is_not_collapse(length):
    diagonal = np.eye(length) * 0.995 + (1 - np.eye(length)) * 0.005 / (length - 1)
    rows = pooled(diagonal)
    assert rows["on_top_column"] == pytest.approx(1 / length)
    assert rows["max_weight"] == pytest.approx(0.995)  # just as sharp as the stuck one


def test_a_windowed_row_is_measured_within_its_window_with_its_row_sum():
    # local-p: a Gaussian-weighted window of 3 pieces out of 10, mass 0.9 in all
    row = np.zeros(10)
    row[4:7] = [0.3, 0.3, 0.3]
    rows = pooled([row])
    assert rows["window_entropy"] == pytest.approx(1.0)  # uniform inside the window
    assert rows["entropy"] == pytest.approx(np.log(3) / np.log(10))  # over the whole source
    assert rows["row_sum"] == pytest.approx(0.9)


def test_a_run_pools_collapse_over_its_test_sentences(tmp_path):
    align = tmp_path / "alignments"
    align.mkdir()
    stuck = np.zeros((3, 4))
    stuck[:, 1] = 1.0
    np.savez(align / "test.npz", **{"0": stuck, "1": np.eye(5)})
    (align / "test.jsonl").write_text(
        json.dumps({"id": 0, "src_tokens": list("abc") + ["</s>"], "tgt_tokens": list("xyz")})
        + "\n"
    )
    got = attention_diagnostics(align)
    # 3 rows of the stuck sentence on its top column, 1 of the diagonal's 5
    assert got["collapse"] == pytest.approx((3 + 1) / 8) and got["rows"] == 8
    assert got["saturated"] == 1.0 and got["row_sum"] == pytest.approx(1.0)
