"""The comparison's statistics, checked by hand."""

from __future__ import annotations

import pytest


def test_kendall_tau_b_by_hand():
    from seq2seq.compare import kendall_tau_b, ranking_stability

    assert kendall_tau_b([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(2 / 3)  # 5 - 1 of 6 pairs
    assert kendall_tau_b([1, 2, 3], [3, 2, 1]) == -1
    # ties: 4 concordant pairs, 5 untied pairs on each side -> 4 / sqrt(5 * 5)
    assert kendall_tau_b([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8)
    assert kendall_tau_b([1, 1], [1, 2]) is None and kendall_tau_b([1], [1]) is None
    stability = ranking_stability(
        {
            1: {"a": 1, "b": 2, "c": 3},
            2: {"a": 1, "b": 3, "c": 2},  # against seed 1: (1 - 1 + 1) / 3
            3: {"a": 3, "b": 2, "c": 1},  # reversed seed 1; against seed 2: -1/3
            4: {"a": 1},  # one variant: no pair
        }
    )
    assert stability.taus == pytest.approx({(1, 2): 1 / 3, (1, 3): -1.0, (2, 3): -1 / 3})
    assert stability.mean == pytest.approx(-1 / 3) and stability.min == -1


def test_mean_sd_and_t_interval():
    from seq2seq.compare import summarize, t_975

    assert t_975(1) == 12.7062 and t_975(4) == 2.7764
    assert t_975(60) == pytest.approx(2.000298, abs=1e-4)  # past the table: Cornish-Fisher
    s = summarize([20, 22, 27])
    assert s.n == 3 and s.mean == 23 and s.sd == pytest.approx(13**0.5)
    assert s.high - s.mean == pytest.approx(4.3027 * 13**0.5 / 3**0.5)
    one = summarize([5.0])
    assert (one.n, one.mean, one.sd, one.low, one.high) == (1, 5.0, None, None, None)
    assert summarize([]).n == 0
