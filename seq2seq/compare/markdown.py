"""The report's text: what the comparison held fixed, the variant table, the speed table and
the notes (the method, p-values per seed, the ranking's stability, every run that failed,
diverged or was not counted, the BLEU signature), as :class:`ReportSections`, rendered here as
comparison.md and by :mod:`.html_report` as comparison.html."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .runs import RunRecord
from .scoring import SIGNIFICANCE, mixed_scoring
from .stats import RankingStability, Summary
from .variants import AlignmentRuns, Variant, held_fixed

log = logging.getLogger(__name__)

# metrics.json's AER of the runs themselves -> column (shown when some variant has it)
AER_COLUMNS = {"test_aer": "test AER", "gold_aer": "gold AER"}


def _num(value, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _aer_cell(row: dict, key: str) -> str:
    if not row.get(f"{key}_n"):
        return ""
    s = Summary(*(row[f"{key}_{part}"] for part in ("n", "mean", "sd", "ci_low", "ci_high")))
    if s.n == 1:
        return f"{s.mean:.3f} (1)"
    return f"{_summary_cell(s, digits=3)} ({s.n})"


def _summary_cell(s: Summary, *, interval: bool = True, digits: int = 2) -> str:
    if s.n == 0 or s.mean is None:
        return ""
    if s.n == 1 or s.sd is None:
        return f"{s.mean:.{digits}f} (n=1, no interval)"
    text = f"{s.mean:.{digits}f} ± {s.sd:.{digits}f}"
    if interval and s.low is not None:
        text += f" [{s.low:.{digits}f}, {s.high:.{digits}f}]"
    return text


def _row_summary(row: dict, name: str) -> Summary:
    n = row["paired_seeds"] if name == "diff_vs_baseline" else row["n"]
    return Summary(
        n or 0,
        row[f"{name}_mean"],
        row[f"{name}_sd"],
        row[f"{name}_ci_low"],
        row[f"{name}_ci_high"],
    )


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


@dataclass
class ReportSections:
    """The report's text, rendered as markdown (comparison.md) or HTML (comparison.html): the
    setup lines, the variant table, the speed table (column names, rows of cells) and notes
    (markdown inline: `code` spans)."""

    head: list[str]
    columns: list[str]
    rows: list[list[str]]
    speed_columns: list[str]
    speed_rows: list[list[str]]
    notes: list[str]

    SPEED_TITLE = "Speed (not a quality figure):"

    def markdown(self) -> str:
        def table(columns: list[str], rows: list[list[str]]) -> list[str]:
            lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            return lines + ["| " + " | ".join(cells) + " |" for cells in rows]

        return (
            "\n\n".join(self.head)
            + "\n\n"
            + "\n".join(table(self.columns, self.rows))
            + "\n\n"
            + "\n".join([self.SPEED_TITLE, "", *table(self.speed_columns, self.speed_rows)])
            + "\n\n"
            + "\n\n".join(self.notes)
            + "\n"
        )


def report_sections(
    records: list[RunRecord],
    variants: dict[str, Variant],
    rows: list[dict[str, Any]],
    *,
    base: str | None,
    axis: str,
    stability: RankingStability,
    n_bootstrap: int,
    problems: list[str],
    aer_runs: AlignmentRuns,
) -> ReportSections:
    fixed, varying = held_fixed(records, variants)
    aer_keys = [key for key in AER_COLUMNS if any(row[key] is not None for row in rows)]
    mixed = mixed_scoring(records)
    if mixed:
        log.warning("%s", mixed)
    head = [mixed] if mixed else []
    head += [
        "Held fixed: "
        + ("; ".join(f"{k}: {v}" for k, v in fixed.items()) if fixed else "nothing recorded"),
        "Budget: "
        + (
            "in updates (trainer.max_steps; max_time null or not reached): curves against updates"
            if axis == "updates"
            else "in training time or epochs: curves against training time"
        )
        + (
            f" ({fixed['budget']})"
            if "budget" in fixed
            else " (differs: see the budget column)"
            if "budget" in varying
            else " (not recorded)"
        ),
    ]
    columns = [
        "variant",
        "n",
        "test BLEU mean ± sd [95% CI]",
        "chrF mean ± sd",
        f"ΔBLEU vs {base or 'baseline'} [95% CI]",
        "sig. seeds",
        "steps",
        "entropy",
        "max weight",
        "saturated",
        "EOS mass",
        *[AER_COLUMNS[key] for key in aer_keys],
        *[f"AER on {corpus}" for corpus in aer_runs.by_corpus],
        *varying,
    ]
    table = []
    for row in rows:
        if row["baseline"]:
            diff_cell, sig = "baseline", ""
        else:
            diff_cell = _summary_cell(_row_summary(row, "diff_vs_baseline"))
            sig = f"{row['significant_seeds']}/{row['tested_seeds']}" if row["tested_seeds"] else ""
        seeds_cell = {"seeds": row["seeds"]}
        cells = [
            row["variant"],
            str(row["n"]),
            _summary_cell(_row_summary(row, "test_bleu")),
            _summary_cell(_row_summary(row, "test_chrf"), interval=False),
            diff_cell,
            sig,
            _num(row["steps_mean"], 0),
            _num(row["entropy"], 3),
            _num(row["max_weight"], 3),
            _num(row["saturated"], 3),
            _num(row["eos_mass"], 3),
            *[_num(row[key], 3) for key in aer_keys],
            *[_aer_cell(row, AlignmentRuns.column(corpus)) for corpus in aer_runs.by_corpus],
            *[str(seeds_cell.get(k, row.get(k)) or "") for k in varying],
        ]
        table.append(cells)
    speed = []
    for row in rows:
        tokens = Summary(row["n"], row["tokens_per_s_mean"], row["tokens_per_s_sd"])
        speed.append(
            [
                row["variant"],
                _num(row["train_time_s_mean"], 1),
                _summary_cell(tokens, interval=False, digits=1),
            ]
        )

    notes = [
        "n: seeds scored (finished, or diverged and scored on the best checkpoint); mean ± sd "
        "over those seeds (sd with n - 1); [95% CI]: the mean's interval, Student t with n - 1 "
        "degrees of freedom; n=1 has no interval.",
    ]
    if base is not None:
        notes.append(
            f"Baseline: `{base}`. ΔBLEU: mean over the seeds s both have of test BLEU(variant@s) - "
            f"test BLEU({base}@s), with its 95% t interval over seeds. sig. seeds: seeds where "
            f"sacreBLEU's paired bootstrap resampling ({n_bootstrap} samples) of variant@s against "
            f"{base}@s gives p < {SIGNIFICANCE}, over the seeds tested."
            + (" Paired bootstrap disabled (0 samples)." if n_bootstrap <= 0 else "")
        )
        pv = [
            f"`{row['variant']}` {row['p_per_seed']}"
            for row in rows
            if row["p_per_seed"] and not row["baseline"]
        ]
        if pv:
            notes.append("p-values per seed (seed:p): " + "; ".join(pv))
    if stability.taus:
        notes.append(
            f"Ranking stability: Kendall's tau-b between the rankings of the variants by test "
            f"BLEU of two seeds: mean {stability.mean:.3f}, min {stability.min:.3f} over "
            f"{len(stability.taus)} seed pair(s) ("
            + ", ".join(f"{s}-{t}: {tau:.3f}" for (s, t), tau in stability.taus.items())
            + ")."
        )
    else:
        notes.append(
            "Ranking stability: not computed (needs two seeds that both scored at least two "
            "variants with different test BLEU)."
        )
    notes.append(
        "Attention diagnostics (alignments/test.npz of each scored seed, the test hypotheses; "
        "mean over rows, then over seeds): entropy = row entropy / log(source length), max "
        "weight = the row's largest weight, saturated = share of rows with max weight > 0.99, "
        "EOS mass = weight on the source EOS. Empty: no weights (`none`) or no dump. AER: "
        "metrics.json's test_aer, and gold AER from seq2seq-evaluate gold_alignments= "
        "(eval/<name>/metrics.json), mean over seeds."
    )
    notes += describe_aer_runs(aer_runs)
    words = {
        "failed": "FAILED",
        "diverged": "DIVERGED",
        "unfinished": "UNFINISHED",
        "broken": "BROKEN",
    }
    for label, v in variants.items():
        for r in [*v.members, *v.duplicates]:
            if r.status not in words:
                continue
            where = f"`{label}` seed {r.seed if r.seed is not None else '?'} ({r.path})"
            why = {
                "failed": f": {r.error}",
                "diverged": ": stopped on non-finite losses; scored on its best checkpoint",
                "unfinished": ": no final metrics (still running, interrupted or killed)",
                "broken": f": unreadable {r.error}",
            }[r.status]
            notes.append(f"{words[r.status]} {where}{why}")
        for r in v.duplicates:
            notes.append(
                f"DUPLICATE `{label}` seed {r.seed} ({r.path}): a second run of a seed already "
                f"counted ({v.seeds[r.seed].name}); not counted"
            )
        for r in v.unseeded:
            notes.append(f"NO SEED `{label}` ({r.path}): no trainer.seed; counted, never paired")
    notes += problems
    signatures = sorted(
        {r.metrics.get("sacrebleu_signature") for r in records if r.scored} - {None}
    )
    if signatures:
        notes.append("BLEU signature: " + "; ".join(f"`{s}`" for s in signatures))
    return ReportSections(
        head=head,
        columns=columns,
        rows=table,
        speed_columns=["variant", "train time (s), mean", "tokens/s mean ± sd"],
        speed_rows=speed,
        notes=notes,
    )
