"""The report's notes and the tables beside the variants': the omnibus tests, what the
comparison may claim against the baseline, what its design can detect, the ranking's stability,
the pairwise matrix of the attention scores, the runs still missing, the AER runs' setup.
Text only: the numbers come from :mod:`.significance` and :mod:`.tables`."""

from __future__ import annotations

from .scoring import SIGNIFICANCE
from .significance import Significance
from .stats import ALPHA
from .variants import AlignmentRuns, Variant, held_fixed


def describe_aer_runs(aer_runs: AlignmentRuns) -> list[str]:
    """One note per corpus of the AER runs: what its runs held fixed."""
    notes = []
    for corpus, found in aer_runs.by_corpus.items():
        records = [r for v in found.values() for r in v.runs]
        fixed, _ = held_fixed(records, found)
        notes.append(
            f"AER on {corpus}: test_aer (mean ± sd [95% CI] (n seeds)) of {len(records)} run(s) of the "
            f"same variants trained on that corpus, not on the data above; their BLEU is not "
            f"compared. Their setup: "
            + "; ".join(f"{k}: {v}" for k, v in fixed.items() if k != "data")
        )
    return notes


COLLAPSE = 0.5  # a variant with at least this share of steps on one piece is named collapsed


def first(*values):
    return next((v for v in values if v is not None), None)


def _p(p: float | None) -> str:
    if p is None:
        return ""
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def p_cell(p: float | None, p_holm: float | None) -> str:
    return f"{_p(p)}; {_p(p_holm)}" if p is not None else ""


def omnibus_lines(tests: Significance) -> list[str]:
    """The Friedman tests that come before any pairwise claim; Kendall's W for the attention
    scores only (over every variant it would mostly say that `none` is last)."""
    lines = []
    for what, omnibus in (
        ("every variant", tests.omnibus),
        ("the attention scores", tests.scores_omnibus),
    ):
        if omnibus is None:
            lines.append(
                f"Omnibus over {what}: not computed (Friedman needs 3 variants, 2 seeds that "
                "scored all of them, and a seed whose test BLEUs are not all tied)."
            )
            continue
        verdict = "differences" if omnibus.p < ALPHA else "no difference shown"
        agreement = (
            f"; Kendall's W = {omnibus.kendall_w:.3f}" if omnibus is tests.scores_omnibus else ""
        )
        lines.append(
            f"Omnibus over {what} ({len(omnibus.variants)} variants, blocked by seeds "
            f"{', '.join(map(str, omnibus.blocks))}): Friedman chi2 = {omnibus.statistic:.2f}, "
            f"p = {_p(omnibus.p)} by permuting each seed's test BLEUs among the variants "
            f"({verdict} at {ALPHA}){agreement}."
        )
    return lines


def baseline_notes(rows: list[dict], base: str, tests: Significance, n_bootstrap: int) -> list[str]:
    family = tests.family
    notes = [
        f"Baseline: `{base}`. ΔBLEU: mean over the seeds s both have of test BLEU(variant@s) - "
        f"test BLEU({base}@s), with its 95% t interval over seeds. p: the paired t test over "
        f"those seeds (the replicates are training runs), then Holm's adjustment over the "
        f"{family} comparison(s) with `{base}`; `vs {base}` says better / worse only where the "
        f"Holm-adjusted p < {ALPHA} and the omnibus test over every variant rejected first."
    ]
    detectable = tests.detectable(corrected=False)
    if detectable is not None:
        notes.append(
            f"What this design can detect: with {tests.seeds} seeds (the most any variant "
            f"was paired over) and the per-seed "
            f"differences to `{base}` spreading with sd {tests.sd_difference:.2f} (pooled), a "
            f"paired t test finds a true ΔBLEU of {detectable:.2f} with 80% power at "
            f"alpha = {ALPHA}, and one of {tests.detectable(corrected=True):.2f} at Holm's "
            f"strictest step (alpha / {max(1, family)}); smaller differences can exist unseen."
        )
    disagree = [row["variant"] for row in rows if row.get("bleu_chrf_disagree")]
    if disagree:
        notes.append(
            f"BLEU and chrF disagree in sign against `{base}` for: "
            + ", ".join(f"`{label}`" for label in disagree)
            + " (mean ΔBLEU and mean ΔchrF of opposite signs, over the seeds scored by both)."
        )
    notes.append(
        f"Test-set noise, not a claim about a variant: sacreBLEU's paired bootstrap "
        f"({n_bootstrap} samples) of variant@s against {base}@s treats the two trained models "
        f"as fixed; seeds with p < {SIGNIFICANCE} (significant_seeds / tested_seeds and "
        f"p_per_seed in comparison.csv)."
        + (" Paired bootstrap disabled (0 samples)." if n_bootstrap <= 0 else "")
    )
    pv = [
        f"`{row['variant']}` {row['p_per_seed']}"
        for row in rows
        if row["p_per_seed"] and not row["baseline"]
    ]
    if pv:
        notes.append("Bootstrap p-values per seed (seed:p): " + "; ".join(pv))
    return notes


def stability_note(tests: Significance) -> str:
    stability = tests.stability
    if not stability.taus:
        return (
            "Ranking stability: not computed (needs two seeds that both scored at least two "
            "attention scores with different test BLEU)."
        )
    return (
        f"Ranking stability over the attention scores ({len(tests.scores)}; not `none`, not "
        f"the Transformer): Kendall's tau-b between two seeds' rankings by test BLEU: mean "
        f"{stability.mean:.3f}, min {stability.min:.3f} over {len(stability.taus)} seed "
        "pair(s) ("
        + ", ".join(f"{s}-{t}: {tau:.3f}" for (s, t), tau in stability.taus.items())
        + ")."
    )


def pairwise_table(tests: Significance) -> list[tuple[str, list[str], list[list[str]]]]:
    """The matrix of ΔBLEU among the attention scores (row minus column)."""
    if len(tests.scores) < 2:
        return []
    pairs = len(tests.scores) * (len(tests.scores) - 1) // 2
    tested = sum(cell.test.p is not None for (a, b), cell in tests.matrix.items() if a < b)
    untested = (
        f" ({pairs - tested} pair(s) untested: fewer than 2 common seeds, or no spread; such a "
        "cell gives its n, or is empty without a common seed)"
        if tested < pairs
        else ""
    )
    title = (
        f"ΔBLEU among the attention scores (row - column, mean over common seeds; Holm-adjusted "
        f"p of the paired t test over the {tested} tested pair(s){untested}; + / - where it is "
        f"< {ALPHA} and the omnibus over the scores rejected):"
    )
    rows = []
    for a in tests.scores:
        cells = [a]
        for b in tests.scores:
            cell = tests.matrix.get((a, b))
            if cell is None or cell.test.mean is None:
                cells.append("")
                continue
            mark = {"better": " +", "worse": " -"}.get(tests.pair_direction(a, b), "")
            p = f" ({_p(cell.p_holm)})" if cell.p_holm is not None else f" (n={cell.test.n})"
            cells.append(f"{cell.test.mean + 0.0:+.2f}{p}{mark}")  # + 0.0: no "-0.00"
        rows.append(cells)
    return [(title, ["row - column", *tests.scores], rows)]


def missing_runs(variants: dict[str, Variant]) -> list[str]:
    """One line per variant lacking a run of a seed some other variant has."""
    seeds = sorted({s for v in variants.values() for s in v.seeds})
    lines = []
    for label, v in variants.items():
        missing = [s for s in seeds if s not in v.seeds]
        if missing:
            lines.append(
                f"MISSING `{label}` seed(s) {', '.join(map(str, missing))}: no run directory "
                "(the grid is not complete)"
            )
    return lines
