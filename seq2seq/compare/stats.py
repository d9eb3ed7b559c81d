"""The few statistics a comparison needs, without scipy: mean, sd and a Student t interval of the
mean, and Kendall's tau-b between two rankings."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

# two-sided 95%: the 0.975 quantile of Student's t with df = 1..30 degrees of freedom
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip
_Z975 = 1.959963984540054


def t_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (a table up to 30, then
    the Cornish-Fisher expansion around the normal quantile, within 1e-4 of the exact value)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z, v = _Z975, float(df)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
    )


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


def _sign(v: float) -> int:
    return (v > 0) - (v < 0)


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b of two paired samples: sum over pairs i < j of
    sign(x_i - x_j) * sign(y_i - y_j), over sqrt(pairs untied in x * pairs untied in y).
    None when either side has no untied pair (fewer than two items, or all tied)."""
    if len(x) != len(y):
        raise ValueError(f"{len(x)} values against {len(y)}")
    s = untied_x = untied_y = 0
    for i, j in combinations(range(len(x)), 2):
        a, b = _sign(x[i] - x[j]), _sign(y[i] - y[j])
        s += a * b
        untied_x += a != 0
        untied_y += b != 0
    if not untied_x or not untied_y:
        return None
    return s / math.sqrt(untied_x * untied_y)


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
