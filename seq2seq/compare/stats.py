"""The statistics of a comparison over seeds, on scipy.stats (the library a reviewer trusts).

A variant is a training procedure: its replicates are training runs (seeds), so every test
here takes one number per run. Differences are paired by seed (the same data order and
initial draw for every variant of a seed). Where a family of comparisons is tested, p values
are adjusted by Holm's step-down method, and an omnibus test (Friedman, blocked by seed) comes
before any pairwise claim.

- :func:`summarize`: mean, sd and the Student t interval of the mean.
- :func:`paired_test`: the paired t test of two variants over their common seeds.
- :func:`holm`: Holm-adjusted p values of a family.
- :func:`friedman`: the Friedman test across variants (its p by permuting within seeds), with
  Kendall's W.
- :func:`pairwise`: every pair of variants (mean difference, p, Holm over the pairs).
- :func:`minimal_detectable_difference`: the smallest difference a paired t test over n seeds
  finds with the given power at the observed spread.
- :func:`kendall_tau_b`, :func:`ranking_stability`: how the ranking moves between seeds.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TypeVar

import numpy as np
from scipy import optimize, stats

ALPHA = 0.05
# Friedman's p by permutation: exact where there are fewer arrangements, else this many draws
# of a generator seeded with 0, over the variants in sorted order (the same runs give the same p
# in whatever order the report lists them)
PERMUTATIONS = 19_999
K = TypeVar("K", bound=Hashable)


def t_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return float(stats.t.ppf(0.975, df))


@dataclass(frozen=True)
class Summary:
    """n values: their mean, sample standard deviation (n - 1) and the 95% t interval of the
    mean; sd and interval are None for n = 1, everything but n for n = 0."""

    n: int
    mean: float | None = None
    sd: float | None = None
    low: float | None = None
    high: float | None = None


def summarize(values: Sequence[float]) -> Summary:
    values = [float(v) for v in values if v is not None]
    n = len(values)
    if n == 0:
        return Summary(0)
    mean = sum(values) / n
    if n == 1:
        return Summary(1, mean)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_975(n - 1) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half)


@dataclass(frozen=True)
class PairedTest:
    """A against B over n common seeds: the mean of the per-seed differences A - B, their sd,
    the 95% t interval of the mean difference, and the two-sided paired t test's statistic and
    p (None below 2 seeds, or when every difference is the same)."""

    n: int
    mean: float | None
    sd: float | None
    low: float | None
    high: float | None
    t: float | None
    p: float | None


def paired_test(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """The paired t test of ``a`` against ``b`` (one value per seed, in the same seed order)."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} values against {len(b)}")
    diffs = summarize([x - y for x, y in zip(a, b, strict=True)])
    if diffs.n < 2 or not diffs.sd:
        return PairedTest(diffs.n, diffs.mean, diffs.sd, diffs.low, diffs.high, None, None)
    result = stats.ttest_rel(a, b)
    return PairedTest(
        diffs.n,
        diffs.mean,
        diffs.sd,
        diffs.low,
        diffs.high,
        float(result.statistic),
        float(result.pvalue),
    )


def holm(pvalues: Mapping[K, float | None]) -> dict[K, float | None]:
    """Holm's step-down adjustment over the family ``pvalues`` (None: not tested, left out of
    the family): the i-th smallest of m p values becomes max over j <= i of min(1, (m - j + 1)
    p_(j)). Rejecting where the adjusted p is below alpha controls the family-wise error."""
    tested = sorted((p, key) for key, p in pvalues.items() if p is not None)
    m = len(tested)
    adjusted: dict[K, float | None] = {key: None for key in pvalues}
    running = 0.0
    for i, (p, key) in enumerate(tested):
        running = max(running, min(1.0, (m - i) * p))
        adjusted[key] = running
    return adjusted


def direction(mean_difference: float | None, p_adjusted: float | None, alpha=ALPHA) -> str:
    """``better`` / ``worse`` where the adjusted p supports a difference of that sign, else ''."""
    if mean_difference is None or p_adjusted is None or p_adjusted >= alpha:
        return ""
    return "better" if mean_difference > 0 else "worse"


@dataclass(frozen=True)
class Omnibus:
    """The Friedman test of k variants over the blocks (seeds) that scored all of them: its
    statistic (tie-corrected, as scipy computes it), its p by permutation of the scores within
    each block, and Kendall's W of the seeds' rankings (the statistic over blocks * (k - 1))."""

    statistic: float
    p: float
    variants: tuple
    blocks: tuple
    kendall_w: float


def _friedman_statistic(*columns, axis=-1):
    return stats.friedmanchisquare(*columns, axis=axis).statistic


def friedman(scores: Mapping[Hashable, Mapping[K, float]], variants: Sequence[K]) -> Omnibus | None:
    """``scores``: seed -> variant -> score. Only seeds that scored every variant are blocks;
    None with fewer than 3 variants or 2 such seeds (scipy's test needs them), or when every
    block ties all its variants (no ranking to test).

    The p is the share of within-block rearrangements (every seed's scores shuffled among the
    variants) whose statistic is at least the observed one: with 3 seeds the chi-square
    approximation is far from it (4 variants ranked alike by 3 seeds: 0.029 against the exact
    24 / 4!^3 = 0.0017)."""
    blocks = tuple(s for s in sorted(scores) if all(v in scores[s] for v in variants))
    if len(variants) < 3 or len(blocks) < 2:
        return None
    if all(len({scores[s][v] for v in variants}) == 1 for s in blocks):
        return None
    ordered = sorted(variants, key=str)
    columns = [np.array([scores[s][v] for s in blocks], dtype=np.float64) for v in ordered]
    result = stats.permutation_test(
        columns,
        _friedman_statistic,
        permutation_type="samples",
        vectorized=True,
        n_resamples=PERMUTATIONS,
        alternative="greater",
        rng=np.random.default_rng(0),
    )
    statistic = float(result.statistic)
    w = statistic / (len(blocks) * (len(variants) - 1))
    return Omnibus(statistic, float(result.pvalue), tuple(variants), blocks, w)


@dataclass(frozen=True)
class PairCell:
    """Row variant minus column variant over their common seeds; p of the paired t test and
    its Holm adjustment over every pair of the matrix."""

    test: PairedTest
    p_holm: float | None


def pairwise(
    scores: Mapping[K, Mapping[Hashable, float]], variants: Sequence[K]
) -> dict[tuple[K, K], PairCell]:
    """``scores``: variant -> seed -> score. Every ordered pair (a, b), a != b, gets a - b;
    the family for Holm is the unordered pairs."""
    tests: dict[tuple[K, K], PairedTest] = {}
    for a, b in combinations(variants, 2):
        seeds = sorted(set(scores[a]) & set(scores[b]))
        tests[(a, b)] = paired_test([scores[a][s] for s in seeds], [scores[b][s] for s in seeds])
    adjusted = holm({pair: test.p for pair, test in tests.items()})
    cells = {}
    for (a, b), test in tests.items():
        cells[(a, b)] = PairCell(test, adjusted[(a, b)])
        flipped = PairedTest(
            test.n,
            None if test.mean is None else -test.mean,
            test.sd,
            None if test.high is None else -test.high,
            None if test.low is None else -test.low,
            None if test.t is None else -test.t,
            test.p,
        )
        cells[(b, a)] = PairCell(flipped, adjusted[(a, b)])
    return cells


def paired_power(difference: float, sd_difference: float, n: int, *, alpha: float = ALPHA) -> float:
    """The probability that a two-sided paired t test over ``n`` seeds rejects at ``alpha``
    when the true mean difference is ``difference`` and per-seed differences spread with
    ``sd_difference``: t then follows the noncentral t with n - 1 degrees of freedom and
    noncentrality difference * sqrt(n) / sd."""
    df, critical = n - 1, stats.t.ppf(1 - alpha / 2, n - 1)
    shift = difference * math.sqrt(n) / sd_difference
    # the lower tail P(T < -c) as P(T > c) at -shift: nct.cdf(-c) turns NaN where it underflows
    return float(stats.nct.sf(critical, df, shift) + stats.nct.sf(critical, df, -shift))


def minimal_detectable_difference(
    sd_difference: float | None, n: int, *, alpha: float = ALPHA, power: float = 0.8
) -> float | None:
    """The smallest true mean difference a two-sided paired t test over ``n`` seeds detects
    with probability ``power`` at level ``alpha``, when per-seed differences spread with
    ``sd_difference``: the root of :func:`paired_power` = ``power`` (exact: the textbook
    (t_{1-alpha/2} + t_{power}) sd / sqrt(n) ignores the noncentral t's skew and, at 3 seeds,
    promises 80% where there is 77%, 69% at alpha / 8). None below 2 seeds or without spread."""
    if sd_difference is None or not sd_difference > 0 or n < 2:
        return None
    # power rises from alpha at 0 towards 1: double the upper end until it brackets the root
    low, high = 0.0, sd_difference
    while paired_power(high, sd_difference, n, alpha=alpha) < power:
        low, high = high, 2 * high
    return float(
        optimize.brentq(
            lambda d: paired_power(d, sd_difference, n, alpha=alpha) - power, low, high, xtol=1e-10
        )
    )


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b of two paired samples; None when either side has no untied pair."""
    if len(x) != len(y):
        raise ValueError(f"{len(x)} values against {len(y)}")
    if len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(stats.kendalltau(x, y).statistic)


@dataclass(frozen=True)
class RankingStability:
    """Kendall's tau-b between the rankings of the variants of each pair of seeds."""

    taus: dict[tuple[int, int], float]  # (seed, seed) -> tau over the variants both scored

    @property
    def mean(self) -> float | None:
        return sum(self.taus.values()) / len(self.taus) if self.taus else None

    @property
    def min(self) -> float | None:
        return min(self.taus.values()) if self.taus else None


def ranking_stability(scores: Mapping[int, Mapping[str, float]]) -> RankingStability:
    """``scores``: seed -> variant -> test BLEU. Every pair of seeds with at least two variants
    in common (and an untied pair on each side) contributes one tau."""
    taus = {}
    for s, t in combinations(sorted(scores), 2):
        common = [v for v in scores[s] if v in scores[t]]
        tau = kendall_tau_b([scores[s][v] for v in common], [scores[t][v] for v in common])
        if tau is not None:
            taus[(s, t)] = tau
    return RankingStability(taus)
