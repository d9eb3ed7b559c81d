"""The comparison's statistics (seq2seq.compare.stats), checked by hand and against scipy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from seq2seq.compare.stats import (
    direction,
    friedman,
    holm,
    kendall_tau_b,
    minimal_detectable_difference,
    paired_power,
    paired_test,
    pairwise,
    ranking_stability,
    summarize,
)


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

    # the printed tables' 4-digit values (scipy's quantiles, exact)
    assert t_975(1) == pytest.approx(12.7062, abs=5e-5)
    assert t_975(4) == pytest.approx(2.7764, abs=5e-5)
    assert t_975(60) == pytest.approx(2.000298, abs=1e-6)
    s = summarize([20, 22, 27])
    assert s.n == 3 and s.mean == 23 and s.sd == pytest.approx(13**0.5)
    assert s.high - s.mean == pytest.approx(t_975(2) * 13**0.5 / 3**0.5)
    assert t_975(2) == pytest.approx(4.3027, abs=5e-5)
    one = summarize([5.0])
    assert (one.n, one.mean, one.sd, one.low, one.high) == (1, 5.0, None, None, None)
    assert summarize([]).n == 0


def test_holm_against_a_hand_worked_example():
    # sorted: .005 x4 = .02; .01 x3 = .03; .03 x2 = .06; .04 x1 = .04 -> .06 (monotone)
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005, "e": None})
    assert adjusted == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06, "d": 0.02, "e": None})


def test_holm_caps_at_one_and_keeps_order():
    adjusted = holm({"x": 0.6, "y": 0.5, "z": 0.001})
    assert adjusted == pytest.approx({"x": 1.0, "y": 1.0, "z": 0.003})


def test_the_readme_family_of_nine_needs_p_below_alpha_over_nine():
    # the smallest of 9 p values survives Holm at 0.05 only below 0.05 / 9 = 0.0056
    family = {i: 0.5 for i in range(8)}
    assert holm(family | {"t": 0.0099})["t"] == pytest.approx(0.0891)
    assert holm(family | {"t": 0.005})["t"] < 0.05


def test_paired_test_equals_scipy_ttest_rel():
    a, b = [31.2, 30.1, 32.4, 29.8], [30.0, 29.9, 31.0, 30.2]
    got = paired_test(a, b)
    want = stats.ttest_rel(a, b)
    assert got.t == pytest.approx(want.statistic) and got.p == pytest.approx(want.pvalue)
    assert got.mean == pytest.approx(0.6) and got.n == 4  # 1.2, 0.2, 1.4, -0.4
    # deviations .6 -.4 .8 -1.0: sd = sqrt(2.16 / 3) = sqrt(.72); half width 3.18245 * sd / 2
    assert got.sd == pytest.approx(0.848528, abs=1e-6)
    assert (got.low, got.high) == pytest.approx((0.6 - 1.350198, 0.6 + 1.350198), abs=1e-5)


def test_paired_test_without_spread_or_replicates_has_no_p():
    assert paired_test([1.0, 2.0], [0.0, 1.0]).p is None  # every difference is 1
    assert paired_test([1.0], [0.0]).p is None


def _midranks(row) -> list[float]:
    return [sum(y < x for y in row) + (sum(y == x for y in row) + 1) / 2 for x in row]


def _exact_friedman_p(blocks: list[list[float]]) -> float:
    """The share of the (k!)^n arrangements (each block's values permuted among the k
    variants) whose statistic is at least the observed one, counted one by one, with the
    textbook statistic on mid-ranks and its tie correction (no scipy):
    12 sum_j (R_j - n (k + 1) / 2)^2 / (n k (k + 1) - sum_blocks sum_ties (t^3 - t) / (k - 1))."""
    n, k = len(blocks), len(blocks[0])
    ties = sum(row.count(x) ** 3 - row.count(x) for row in blocks for x in set(row))
    denominator = n * k * (k + 1) - ties / (k - 1)

    def statistic(rows) -> float:
        sums = [sum(col) for col in zip(*map(_midranks, rows), strict=True)]
        return 12 * sum((r - n * (k + 1) / 2) ** 2 for r in sums) / denominator

    observed = statistic(blocks)
    arrangements = [list(itertools.permutations(row)) for row in blocks]
    hits = total = 0
    for rows in itertools.product(*arrangements):
        total += 1
        hits += statistic(rows) >= observed - 1e-9
    return hits / total


def test_friedman_statistic_equals_scipy_and_its_p_is_the_exact_permutation_p():
    scores = {
        1: {"a": 30.0, "b": 28.0, "c": 25.0, "d": 20.0},
        2: {"a": 29.0, "b": 29.5, "c": 24.0, "d": 21.0},
        3: {"a": 31.0, "b": 27.0, "c": 26.0, "d": 19.0},
        4: {"a": 30.5, "b": 28.0},  # incomplete: not a block
    }
    got = friedman(scores, ["a", "b", "c", "d"])
    want = stats.friedmanchisquare(
        [30.0, 29.0, 31.0], [28.0, 29.5, 27.0], [25.0, 24.0, 26.0], [20.0, 21.0, 19.0]
    )
    assert got.statistic == pytest.approx(want.statistic) == pytest.approx(8.2)  # R = 11 10 6 3
    assert got.blocks == (1, 2, 3)
    blocks = [[scores[s][v] for v in "abcd"] for s in (1, 2, 3)]
    assert got.p == pytest.approx(_exact_friedman_p(blocks))  # 4!^3 = 13,824 <= the draws
    assert got.p < want.pvalue  # the chi-square approximation is conservative here
    assert got.kendall_w == pytest.approx(8.2 / (3 * 3))
    # every seed ranks a > b > c > d: 24 of the 13,824 arrangements agree as much
    alike = {s: {"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0} for s in (1, 2, 3)}
    perfect = friedman(alike, ["a", "b", "c", "d"])
    assert perfect.p == pytest.approx(24 / 24**3) and perfect.kendall_w == 1.0


def test_friedman_with_tied_blocks_against_its_exact_permutation_p():
    # seed 1 ties a and b: mid-ranks 1.5 1.5 3 4, a tie correction of (2^3 - 2) / 3
    scores = {
        1: {"a": 20.0, "b": 20.0, "c": 25.0, "d": 30.0},
        2: {"a": 21.0, "b": 19.0, "c": 24.0, "d": 31.0},
        3: {"a": 18.0, "b": 22.0, "c": 23.0, "d": 29.0},
    }
    got = friedman(scores, ["a", "b", "c", "d"])
    blocks = [[scores[s][v] for v in "abcd"] for s in (1, 2, 3)]
    columns = [[scores[s][v] for s in (1, 2, 3)] for v in "abcd"]
    assert got.statistic == pytest.approx(stats.friedmanchisquare(*columns).statistic)
    assert got.p == pytest.approx(_exact_friedman_p(blocks))


def test_friedman_p_by_draws_is_reproducible_and_near_the_exact_one():
    # 6 variants, 3 seeds: 6!^3 arrangements, more than the draws
    rng = np.random.default_rng(7)
    scores = {s: {v: float(rng.normal() + 0.4 * v) for v in range(6)} for s in (1, 2, 3)}
    first, again = friedman(scores, list(range(6))), friedman(scores, [3, 1, 5, 0, 2, 4])
    assert first.p == again.p  # the same runs in another order: the same draws
    blocks = [[scores[s][v] for v in range(6)] for s in (1, 2, 3)]
    sample = rng.permuted(np.tile(np.array(blocks), (200_000, 1, 1)), axis=2)
    ranks = sample.argsort(axis=2).argsort(axis=2) + 1
    sums = ranks.sum(axis=1)
    draws = 12 / (3 * 6 * 7) * (sums**2).sum(axis=1) - 3 * 3 * 7
    assert first.p == pytest.approx((draws >= first.statistic - 1e-9).mean(), abs=0.01)


def test_kendalls_w_with_ties_is_tie_corrected():
    # both seeds: a = b < c. Untied ranks 1.5 1.5 3 agree perfectly: W = 1 with the
    # correction for ties (0.75 without it)
    tied = {s: {"a": 1.0, "b": 1.0, "c": 2.0} for s in (1, 2)}
    assert friedman(tied, ["a", "b", "c"]).kendall_w == pytest.approx(1.0)


def test_friedman_needs_three_variants_two_complete_seeds_and_a_ranking():
    assert friedman({1: {"a": 1, "b": 2}, 2: {"a": 1, "b": 3}}, ["a", "b"]) is None
    assert friedman({1: {"a": 1, "b": 2, "c": 3}}, ["a", "b", "c"]) is None
    all_tied = {1: {"a": 1, "b": 1, "c": 1}, 2: {"a": 2, "b": 2, "c": 2}}
    assert friedman(all_tied, ["a", "b", "c"]) is None


@pytest.mark.parametrize(
    ("mean", "p", "expected"),
    [(1.5, 0.01, "better"), (-1.5, 0.01, "worse"), (1.5, 0.2, ""), (None, None, "")],
)
def test_direction_needs_the_adjusted_p(mean, p, expected):
    assert direction(mean, p) == expected


def test_pairwise_matrix_is_antisymmetric_with_holm_over_the_pairs():
    scores = {
        "a": {1: 30.0, 2: 31.0, 3: 29.5},
        "b": {1: 28.0, 2: 28.5, 3: 27.0},
        "c": {1: 20.0, 2: 21.0, 3: 19.0, 4: 22.0},
    }
    cells = pairwise(scores, ["a", "b", "c"])
    assert len(cells) == 6
    ab, ba = cells[("a", "b")], cells[("b", "a")]
    assert ab.test.mean == pytest.approx(2.333333) and ba.test.mean == pytest.approx(-2.333333)
    assert ab.test.p == ba.test.p and ab.p_holm == ba.p_holm
    assert (ba.test.low, ba.test.high) == pytest.approx((-ab.test.high, -ab.test.low))
    assert cells[("a", "c")].test.n == 3  # common seeds only
    family = {pair: cells[pair].test.p for pair in [("a", "b"), ("a", "c"), ("b", "c")]}
    assert {pair: cells[pair].p_holm for pair in family} == pytest.approx(holm(family))


@pytest.mark.parametrize(("n", "alpha"), [(3, 0.05), (3, 0.05 / 8), (2, 0.05), (5, 0.05)])
def test_the_minimal_detectable_difference_is_found_with_80_percent_power(n, alpha):
    """Simulated paired experiments at that true difference (sd 1): the t test rejects in 80%
    of them. The textbook (t_.975 + t_.8) sd / sqrt(n) falls short: 3.10 sd at 3 seeds."""
    detectable = minimal_detectable_difference(1.0, n, alpha=alpha)
    assert paired_power(detectable, 1.0, n, alpha=alpha) == pytest.approx(0.8, abs=1e-6)
    diffs = np.random.default_rng(n).normal(detectable, 1.0, size=(200_000, n))
    t = diffs.mean(axis=1) / (diffs.std(axis=1, ddof=1) / np.sqrt(n))
    rejected = np.abs(t) > stats.t.ppf(1 - alpha / 2, n - 1)
    assert rejected.mean() == pytest.approx(0.8, abs=0.005)
    textbook = (stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(0.8, n - 1)) / np.sqrt(n)
    assert detectable > textbook


def test_minimal_detectable_difference_by_hand_and_its_edges():
    # 3 seeds, alpha 0.05: 3.264 sd (the noncentral t's root; the textbook formula 3.097)
    assert minimal_detectable_difference(1.0, 3) == pytest.approx(3.2640, abs=1e-3)
    assert minimal_detectable_difference(2.0, 3) == pytest.approx(2 * 3.2640, abs=2e-3)
    assert minimal_detectable_difference(1.0, 10) < minimal_detectable_difference(1.0, 3)
    assert minimal_detectable_difference(1.0, 1) is None
    assert minimal_detectable_difference(0.0, 3) is None


def test_kendall_tau_b_by_hand_and_ties_have_no_ranking():
    x, y = [1, 2, 3, 4, 5], [2, 1, 4, 3, 5]
    assert kendall_tau_b(x, y) == pytest.approx(0.6)  # 8 concordant, 2 discordant of 10
    assert kendall_tau_b([1, 1], [1, 2]) is None
    stability = ranking_stability({1: {"a": 1, "b": 2, "c": 3}, 2: {"a": 1, "b": 3, "c": 2}})
    assert stability.mean == pytest.approx(1 / 3)


def test_summary_interval_uses_student_t():
    s = summarize([1.0, 2.0, 3.0])
    assert (s.mean, s.sd) == pytest.approx((2.0, 1.0))
    assert s.high - s.mean == pytest.approx(stats.t.ppf(0.975, 2) / 3**0.5)
