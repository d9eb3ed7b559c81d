"""The report's text: what the comparison held fixed, the variant table, the speed table and
the notes (the method, p-values per seed, the ranking's stability, every run that failed,
diverged or was not counted, the BLEU signature), as :class:`ReportSections`, rendered here as
comparison.md and by :mod:`.html_report` as comparison.html."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..run_files import EVAL, METRICS, TEST_ALIGNMENTS
from .notes import (
    COLLAPSE,
    baseline_notes,
    describe_aer_runs,
    first,
    missing_runs,
    omnibus_lines,
    p_cell,
    pairwise_table,
    stability_note,
)
from .runs import RunRecord
from .scoring import mixed_scoring
from .significance import Significance
from .stats import Summary
from .variants import AlignmentRuns, Variant, held_fixed

log = logging.getLogger(__name__)

# the run metrics' AER of the runs themselves -> column (shown when some variant has it)
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
    # further tables after the variants' (e.g. the pairwise matrix): (title, columns, rows)
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)

    SPEED_TITLE = "Speed (not a quality figure):"

    def markdown(self) -> str:
        def table(columns: list[str], rows: list[list[str]]) -> list[str]:
            lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            return lines + ["| " + " | ".join(cells) + " |" for cells in rows]

        titled = [(t, c, r) for t, c, r in self.tables] + [
            (self.SPEED_TITLE, self.speed_columns, self.speed_rows)
        ]
        return (
            "\n\n".join(self.head)
            + "\n\n"
            + "\n".join(table(self.columns, self.rows))
            + "\n\n"
            + "\n\n".join("\n".join([title, "", *table(c, r)]) for title, c, r in titled)
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
    tests: Significance,
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
    head += omnibus_lines(tests)
    columns = [
        "variant",
        "n",
        "test BLEU mean ± sd [95% CI]",
        "chrF mean ± sd",
        "BP",
        "length ratio",
        f"ΔBLEU vs {base or 'baseline'} [95% CI]",
        "p (t over seeds; Holm)",
        f"vs {base or 'baseline'}",
        "converged",
        "epochs",
        "steps",
        "params",
        "entropy",
        "row sum",
        "collapse",
        "saturated",
        "EOS mass",
        *[AER_COLUMNS[key] for key in aer_keys],
        *[f"AER on {corpus}" for corpus in aer_runs.by_corpus],
        *varying,
    ]
    table = []
    for row in rows:
        if row["baseline"]:
            diff_cell, p_text = "baseline", ""
        else:
            diff_cell = _summary_cell(_row_summary(row, "diff_vs_baseline"))
            p_text = p_cell(row["p_t_vs_baseline"], row["p_holm_vs_baseline"])
        seeds_cell = {"seeds": row["seeds"]}
        cells = [
            row["variant"],
            str(row["n"]),
            _summary_cell(_row_summary(row, "test_bleu")),
            _summary_cell(_row_summary(row, "test_chrf"), interval=False),
            _num(row["test_bp_mean"], 3),
            _num(row["test_length_ratio_mean"], 3),
            diff_cell,
            p_text,
            row["direction_vs_baseline"] or "",
            row["converged"] or "",
            _num(row["epochs_mean"], 1),
            _num(row["steps_mean"], 0),
            row["params"] or "",
            _num(first(row["window_entropy"], row["entropy"]), 3),
            _num(row["row_sum"], 3),
            _num(row["collapse"], 3),
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
        notes += baseline_notes(rows, base, tests, n_bootstrap)
    notes.append(stability_note(tests))
    notes.append(
        "Length: BP = BLEU's brevity penalty and length ratio = hypothesis / reference length "
        "(BLEU's tokens) of the test translations, mean over seeds. converged: runs the "
        "convergence rule stopped, of those that record it; epochs and steps at the stop."
    )
    notes.append(
        f"Attention diagnostics ({TEST_ALIGNMENTS} of each scored seed, the test hypotheses; "
        "mean over rows, then over seeds): entropy = row entropy / log(the row's support: the "
        "whole source for a softmax, the window for local-m/local-p), row sum = the row's total "
        "weight (below 1 where local-p's Gaussian truncates its window), collapse = share of "
        "target steps whose argmax is the sentence's most-attended source piece (1: every step "
        "on one piece, which is COLLAPSE; 1/length for a diagonal; a row whose largest weight "
        "is tied, as in uniform attention, counts 0), saturated = share of rows "
        "with max weight > 0.99 (sharp: collapsed or a sharp moving alignment alike), EOS mass "
        f"= weight on the source EOS. Empty: no weights (`none`) or no dump. AER: {METRICS}'s "
        "test_aer, and gold AER from seq2seq-evaluate gold_alignments= "
        f"({EVAL}/<name>/{METRICS}), mean over seeds."
    )
    notes += [
        f"COLLAPSE `{row['variant']}`: {row['collapse']:.0%} of its target steps attend the "
        "sentence's most-attended source piece"
        for row in rows
        if row["collapse"] is not None and row["collapse"] >= COLLAPSE
    ]
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
        for r in v.scored:
            if r.metrics.get("converged") is False:
                notes.append(
                    f"NOT CONVERGED `{label}` seed {r.seed} ({r.path}): stopped by "
                    f"{r.metrics.get('stop_reason')} before the convergence rule did"
                )
    notes += missing_runs(variants)
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
        tables=pairwise_table(tests),
    )
