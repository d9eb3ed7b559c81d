"""What the comparison can claim: tests whose replicates are training runs.

A variant is a training procedure, so its replicates are its seeds. Against the baseline each
variant gets the paired t test of its test BLEU over the seeds both scored, the p values
adjusted by Holm over that family, and a direction (better / worse) only where the adjusted p
supports it AND the omnibus Friedman test over every variant (blocked by seed) rejects first.
Among the attention scores (the RNN variants with attention weights: not ``none``, not the
Transformer) every pair gets a paired difference with Holm over the pairs, after a Friedman
test over those scores; the ranking's stability (Kendall's tau-b between seeds, Kendall's W)
is over the same scores. Runs are ranked or paired only where their BLEUs are comparable
(:func:`~.scoring.scoring`: tokenizer, references, commit). sacreBLEU's per-seed paired
bootstrap treats two trained models as fixed: it measures test-set noise, not a variant, and
stays a note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .runs import has_own_attention, has_weights, model_of
from .scoring import scoring
from .stats import (
    ALPHA,
    Omnibus,
    PairCell,
    PairedTest,
    RankingStability,
    direction,
    friedman,
    holm,
    minimal_detectable_difference,
    paired_test,
    pairwise,
    ranking_stability,
)
from .variants import Variant, metric_values


def scores_by_seed(v: Variant, key: str = "test_bleu") -> dict[int, float]:
    """seed -> the metrics' ``key`` of the variant's scored run of that seed."""
    found = {}
    for seed in v.seeds:
        run = v.scored_at(seed)
        if run is not None and (value := metric_values([run], key)):
            found[seed] = value[0]
    return found


def is_attention_score(v: Variant) -> bool:
    """A variant of a model that uses the chosen attention (the RNN's), with weights: the
    scores the pairwise matrix compares."""
    runs = v.scored or v.runs
    return bool(runs) and all(
        model_of(r.config) is not None and not has_own_attention(r.config) and has_weights(r)
        for r in runs
    )


@dataclass
class Significance:
    """The comparison's tests (see the module docstring)."""

    base: str | None
    against_base: dict[str, PairedTest] = field(default_factory=dict)  # BLEU, per variant
    chrf_against_base: dict[str, PairedTest] = field(default_factory=dict)
    # mean ΔBLEU and mean ΔchrF of opposite signs, over the seeds that have both
    bleu_chrf_disagree: dict[str, bool | None] = field(default_factory=dict)
    p_holm: dict[str, float | None] = field(default_factory=dict)
    omnibus: Omnibus | None = None  # every variant
    scores: list[str] = field(default_factory=list)  # the attention scores, in order
    scores_omnibus: Omnibus | None = None
    matrix: dict[tuple[str, str], PairCell] = field(default_factory=dict)
    stability: RankingStability = field(default_factory=lambda: RankingStability({}))
    seeds: int = 0  # the most seeds any variant was paired with the baseline over
    sd_difference: float | None = None  # pooled sd of the per-seed differences to the baseline

    def direction(self, label: str) -> str:
        """better / worse against the baseline, where the omnibus and Holm both support it."""
        if self.omnibus is None or self.omnibus.p >= ALPHA or label not in self.against_base:
            return ""
        return direction(self.against_base[label].mean, self.p_holm.get(label))

    def pair_direction(self, a: str, b: str) -> str:
        cell = self.matrix.get((a, b))
        if cell is None or self.scores_omnibus is None or self.scores_omnibus.p >= ALPHA:
            return ""
        return direction(cell.test.mean, cell.p_holm)

    @property
    def family(self) -> int:
        return sum(test.p is not None for test in self.against_base.values())

    def detectable(self, *, corrected: bool) -> float | None:
        """The smallest ΔBLEU against the baseline that a paired t test over this many seeds
        finds with 80% power at the pooled spread; ``corrected``: at Holm's strictest level,
        alpha over the family size."""
        alpha = ALPHA / max(1, self.family) if corrected else ALPHA
        return minimal_detectable_difference(self.sd_difference, self.seeds, alpha=alpha)


def _paired(a: dict[int, float], b: dict[int, float]) -> PairedTest:
    seeds = sorted(set(a) & set(b))
    return paired_test([a[s] for s in seeds], [b[s] for s in seeds])


def _disagree(bleu: PairedTest, chrf: PairedTest) -> bool | None:
    if bleu.mean is None or chrf.mean is None:
        return None
    return bleu.mean * chrf.mean < 0


def comparable_by_seed(
    variants: dict[str, Variant],
    bleu: dict[str, dict[int, float]],
    labels: list[str],
    base: str | None,
) -> dict[int, dict[str, float]]:
    """seed -> label -> test BLEU of the runs of ``labels`` a ranking may hold together: at
    each seed, those whose BLEUs are comparable (:func:`~.scoring.scoring`) with the baseline's
    run of that seed where one group is, else the largest group (the first found among equals).
    The report flags the others (mixed scoring) and no test ranks them."""
    rows: dict[int, dict[str, float]] = {}
    for seed in sorted({s for label in labels for s in bleu[label]}):
        groups: dict[tuple, dict[str, float]] = {}
        for label in labels:
            if seed in bleu[label]:
                key = scoring(variants[label].seeds[seed])
                groups.setdefault(key, {})[label] = bleu[label][seed]
        base_run = variants[base].seeds.get(seed) if base in variants else None
        preferred = groups.get(scoring(base_run)) if base_run is not None else None
        rows[seed] = preferred or max(groups.values(), key=len)
    return rows


def significance(variants: dict[str, Variant], base: str | None) -> Significance:
    """The tests over ``variants`` (label -> Variant) against ``base``; a seed is paired only
    where both runs' BLEUs are comparable (:func:`~.scoring.scoring`: tokenizer, references,
    commit)."""
    out = Significance(base)
    bleu = {label: scores_by_seed(v) for label, v in variants.items()}
    chrf = {label: scores_by_seed(v, "test_chrf") for label, v in variants.items()}
    by_seed = comparable_by_seed(variants, bleu, list(variants), base)
    if base is not None:
        for label in variants:
            if label == base:
                continue
            pairable = {s for s, row in by_seed.items() if base in row and label in row}
            keep = {s: x for s, x in bleu[label].items() if s in pairable}
            out.against_base[label] = _paired(keep, bleu[base])
            with_chrf = {s: x for s, x in chrf[label].items() if s in pairable}
            out.chrf_against_base[label] = _paired(with_chrf, chrf[base])
            both = {s: x for s, x in keep.items() if s in with_chrf and s in chrf[base]}
            out.bleu_chrf_disagree[label] = _disagree(
                _paired(both, bleu[base]), out.chrf_against_base[label]
            )
        out.p_holm = holm({label: t.p for label, t in out.against_base.items()})
        spreads = [t.sd for t in out.against_base.values() if t.sd is not None and t.n > 1]
        if spreads:
            out.sd_difference = math.sqrt(sum(sd * sd for sd in spreads) / len(spreads))
        out.seeds = max((t.n for t in out.against_base.values()), default=0)
    out.omnibus = friedman(by_seed, list(variants))
    out.scores = [label for label, v in variants.items() if is_attention_score(v)]
    # the scores' own grouping: a baseline run of another commit drops none of them
    score_seeds = comparable_by_seed(variants, bleu, out.scores, base)
    out.scores_omnibus = friedman(score_seeds, out.scores)
    by_score = {
        label: {s: row[label] for s, row in score_seeds.items() if label in row}
        for label in out.scores
    }
    out.matrix = pairwise(by_score, out.scores)
    out.stability = ranking_stability(score_seeds)
    return out
