"""Runs grouped into variants over seeds: a variant is a run's label
(:func:`~seq2seq.compare.runs.variant_label`), each of its runs one seed (``trainer.seed`` of
the saved config); the baseline; the runs on a corpus with gold links whose AER is shown beside
the variants; what the runs held fixed; each variant's summaries over its seeds (the statistics
themselves are in :mod:`.stats`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .runs import SETUP, STATUS_RANK, RunRecord, discover_runs, has_weights, load_record
from .stats import Summary, summarize


def metric_values(records: list[RunRecord], key: str) -> list[float]:
    """The finite numbers ``key`` of the records' metrics, in order (others left out)."""
    return [
        float(r.metrics[key])
        for r in records
        if isinstance(r.metrics.get(key), (int, float)) and math.isfinite(r.metrics[key])
    ]


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass
class Variant:
    """The runs of one label; ``seeds`` holds one run per seed (a scored one where there is),
    ``duplicates`` the other runs of a seed already held (not counted)."""

    label: str
    runs: list[RunRecord] = field(default_factory=list)
    seeds: dict[int, RunRecord] = field(default_factory=dict)
    unseeded: list[RunRecord] = field(default_factory=list)
    duplicates: list[RunRecord] = field(default_factory=list)

    @property
    def members(self) -> list[RunRecord]:
        """One run per seed, by seed, then the runs without a known seed."""
        return [self.seeds[s] for s in sorted(self.seeds)] + self.unseeded

    @property
    def scored(self) -> list[RunRecord]:
        return [r for r in self.members if r.scored]

    def scored_at(self, seed: int) -> RunRecord | None:
        run = self.seeds.get(seed)
        return run if run is not None and run.scored else None

    def summary(self, key: str) -> Summary:
        """Mean, sd and 95% t interval of the metrics' ``key`` over the scored seeds."""
        return summarize(metric_values(self.scored, key))


def group_runs(records: list[RunRecord]) -> dict[str, Variant]:
    """label -> Variant, in the order the labels were first found."""
    variants: dict[str, Variant] = {}
    for r in records:
        variants.setdefault(r.label, Variant(r.label)).runs.append(r)
    for v in variants.values():
        for r in sorted(v.runs, key=lambda r: STATUS_RANK[r.status]):  # stable: found order
            if r.seed is None:
                v.unseeded.append(r)
            elif r.seed in v.seeds:
                v.duplicates.append(r)
            else:
                v.seeds[r.seed] = r
    return variants


def choose_baseline(variants: dict[str, Variant], baseline: str | None) -> str | None:
    scored = [label for label, v in variants.items() if v.scored]
    if baseline is not None:
        if baseline not in scored:
            raise ValueError(
                f"baseline {baseline!r} is not a variant with a scored run; "
                f"variants with one: {', '.join(scored) or 'none'}"
            )
        return baseline
    if not scored:
        return None
    return "none" if "none" in scored else scored[0]


def held_fixed(records: list[RunRecord], variants: dict[str, Variant]):
    """(fixed: column -> value, varying: columns) over the runs' setups, seeds included."""
    setups = [r.setup() for r in records]
    fixed: dict[str, str] = {}
    varying: list[str] = []
    for key in SETUP:
        values = {s[key] for s in setups if s[key] is not None}
        if len(values) == 1:
            fixed[key] = values.pop()
        elif values:
            varying.append(key)
    # the seeds the numbers are over: each variant's scored seeds (its failures are in the notes)
    seed_sets = {
        tuple(sorted(r.seed for r in v.scored if r.seed is not None)) for v in variants.values()
    } - {()}
    if len(seed_sets) == 1:
        fixed["seeds"] = ", ".join(map(str, seed_sets.pop()))
    elif seed_sets:
        varying.append("seeds")
    return fixed, varying


@dataclass
class AlignmentRuns:
    """Runs on corpora with gold links whose ``test_aer`` is reported beside the variants of the
    same label: corpus (the runs' data, e.g. ``reverse src-tgt``) -> label -> Variant."""

    by_corpus: dict[str, dict[str, Variant]] = field(default_factory=dict)

    @classmethod
    def load(
        cls, paths: list[str | Path], variants: dict[str, Variant], problems: list[str]
    ) -> AlignmentRuns:
        if not paths:
            return cls()
        records = [load_record(p) for p in discover_runs(paths)]
        grouped: dict[str, list[RunRecord]] = {}
        for r in records:
            grouped.setdefault(r.setup()["data"] or "unknown data", []).append(r)
        runs = cls({corpus: group_runs(rs) for corpus, rs in grouped.items()})
        for corpus, found in runs.by_corpus.items():
            for label, v in found.items():
                where = f"AER run `{label}` on {corpus}"
                if label not in variants:
                    problems.append(f"{where}: no such variant in the comparison; not shown")
                for r in [*v.members, *v.duplicates]:
                    if not r.scored:
                        problems.append(f"{where} seed {r.seed} ({r.path}): {r.status}")
                    elif has_weights(r) and not metric_values([r], "test_aer"):
                        problems.append(f"{where} seed {r.seed} ({r.path}): no test_aer")
        return runs

    @staticmethod
    def column(corpus: str) -> str:
        return "aer_" + "".join(c if c.isalnum() else "_" for c in corpus).strip("_")

    def summary(self, corpus: str, label: str) -> Summary:
        """``test_aer`` over the label's scored seeds on ``corpus`` (n = 0: no such runs)."""
        v = self.by_corpus[corpus].get(label)
        return v.summary("test_aer") if v is not None else Summary(0)
