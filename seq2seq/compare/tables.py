"""The report's machine-readable tables: runs.csv (one row per run) and comparison.csv (one row
per variant, every number of the markdown table with its interval bounds)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from .diagnostics import DIAGNOSTICS
from .runs import SETUP, STATUS_RANK, RunRecord
from .scoring import SIGNIFICANCE
from .significance import Significance
from .stats import summarize
from .variants import AlignmentRuns, Variant, mean, metric_values

UNSCORED = ("failed", "unfinished", "broken")


def round_value(value, digits: int = 4):
    """Floats rounded to ``digits``; anything else as it is."""
    return round(value, digits) if isinstance(value, float) else value


def _joined(values) -> str | None:
    """The distinct values, sorted, ``; ``-separated (``|`` would split a markdown cell)."""
    distinct = sorted({v for v in values if v is not None}, key=str)
    return "; ".join(map(str, distinct)) if distinct else None


def run_rows(
    records: list[RunRecord],
    variants: dict[str, Variant],
    base: str | None,
    pvalues: dict[str, dict[int, float]],
    diagnostics: dict[Path, dict],
) -> list[dict[str, Any]]:
    """runs.csv: one row per run, scored runs first, by variant, seed and name."""
    order = {label: i for i, label in enumerate(variants)}
    rows = []
    for r in sorted(
        records,
        key=lambda r: (
            STATUS_RANK[r.status],
            order[r.label],
            r.seed if r.seed is not None else math.inf,
            r.name,
        ),
    ):
        m = r.metrics
        counted = r.seed is not None and variants[r.label].seeds.get(r.seed) is r
        if r.label == base and counted and r.scored:
            p = "baseline"
        else:
            p = pvalues[r.label].get(r.seed) if counted else None
        diag = diagnostics.get(r.path, {})
        rows.append(
            {
                "variant": r.label,
                "seed": r.seed,
                "run": r.name,
                "status": r.status,
                "params": m.get("params"),
                "steps": m.get("steps"),
                "best_step": m.get("best_step"),
                "epochs": round_value(m.get("epochs"), 2),
                "train_tokens": m.get("train_tokens"),
                "stopped_by": m.get("stopped_by"),
                "converged": m.get("converged"),
                "train_time_s": m.get("train_time_s"),
                "tokens_per_s": m.get("train_tokens_per_sec"),
                "val_bleu": m.get("val_bleu"),
                "test_bleu": m.get("test_bleu"),
                "test_chrf": m.get("test_chrf"),
                "test_bp": m.get("test_bp"),
                "test_length_ratio": m.get("test_length_ratio"),
                "beam": m.get("beam_size"),
                "p_vs_baseline": round_value(p),
                "test_aer": m.get("test_aer"),
                "gold_aer": m.get("gold_aer"),
                **{key: round_value(diag.get(key)) for key in DIAGNOSTICS},
                **r.setup(),
                "signature": m.get("sacrebleu_signature"),
                "commit": m.get("commit"),
                "cpu": m.get("cpu"),
                "device": m.get("device"),
                "error": r.error,
                "run_dir": str(r.path),
            }
        )
    return rows


def _seeds_with(v: Variant, status: str) -> str:
    return " ".join(
        str(r.seed) if r.seed is not None else r.name
        for r in [*v.members, *v.duplicates]
        if r.status == status
    )


def variant_row(
    v: Variant,
    base: str | None,
    diffs: dict[int, float],
    pvalues: dict[int, float],
    diagnostics: dict[Path, dict],
    tests: Significance,
) -> dict[str, Any]:
    """comparison.csv's row of one variant: its summaries over seeds, its paired differences
    against the baseline with the paired t test over seeds (p, Holm's p, the direction they
    support) and the per-seed bootstrap p-values (test-set noise), length and convergence,
    diagnostics, setups and the seeds by status."""
    scored = v.scored
    bleu, chrf = v.summary("test_bleu"), v.summary("test_chrf")
    diff = summarize([diffs[s] for s in sorted(diffs)])
    speed = v.summary("train_tokens_per_sec")
    diag = [diagnostics[r.path] for r in scored if r.path in diagnostics]
    is_base = v.label == base
    row: dict[str, Any] = {
        "variant": v.label,
        "baseline": is_base,
        "n": len(scored),
        "seeds": " ".join(str(r.seed) for r in scored if r.seed is not None),
    }
    for name, s in (("test_bleu", bleu), ("test_chrf", chrf)):
        row |= {
            f"{name}_mean": round_value(s.mean),
            f"{name}_sd": round_value(s.sd),
            f"{name}_ci_low": round_value(s.low),
            f"{name}_ci_high": round_value(s.high),
        }
    row |= {
        "diff_vs_baseline_mean": None if is_base else round_value(diff.mean),
        "diff_vs_baseline_sd": None if is_base else round_value(diff.sd),
        "diff_vs_baseline_ci_low": None if is_base else round_value(diff.low),
        "diff_vs_baseline_ci_high": None if is_base else round_value(diff.high),
        "paired_seeds": None if is_base else diff.n,
        "diff_per_seed": " ".join(f"{s}:{diffs[s]:.4f}" for s in sorted(diffs)) or None,
        "p_per_seed": " ".join(f"{s}:{pvalues[s]:.4f}" for s in sorted(pvalues)) or None,
        "significant_seeds": (
            None if is_base or not pvalues else sum(p < SIGNIFICANCE for p in pvalues.values())
        ),
        "tested_seeds": None if is_base or not pvalues else len(pvalues),
    }
    test = tests.against_base.get(v.label)
    chrf_test = tests.chrf_against_base.get(v.label)
    row |= {
        "p_t_vs_baseline": round_value(test.p) if test else None,
        "p_holm_vs_baseline": round_value(tests.p_holm.get(v.label)),
        "direction_vs_baseline": tests.direction(v.label) or None,
        "chrf_diff_vs_baseline_mean": round_value(chrf_test.mean) if chrf_test else None,
        "bleu_chrf_disagree": tests.bleu_chrf_disagree.get(v.label),
        "test_bp_mean": round_value(mean(metric_values(scored, "test_bp"))),
        "test_length_ratio_mean": round_value(mean(metric_values(scored, "test_length_ratio"))),
        "params": _joined(r.metrics.get("params") for r in scored),
        "epochs_mean": round_value(mean(metric_values(scored, "epochs")), 2),
        "train_tokens_mean": round_value(mean(metric_values(scored, "train_tokens")), 0),
        "converged": _converged(scored),
        "stopped_by": _joined(r.metrics.get("stopped_by") for r in scored),
        "steps_mean": round_value(mean(metric_values(scored, "steps")), 1),
        "train_time_s_mean": round_value(mean(metric_values(scored, "train_time_s")), 1),
        "tokens_per_s_mean": round_value(speed.mean, 1),
        "tokens_per_s_sd": round_value(speed.sd, 1),
    }
    for key in DIAGNOSTICS:
        row[key] = round_value(mean([d[key] for d in diag if d.get(key) is not None]))
    row["diagnostics_seeds"] = len(diag)
    row["test_aer"] = round_value(mean(metric_values(scored, "test_aer")))
    row["gold_aer"] = round_value(mean(metric_values(scored, "gold_aer")))
    setups = [r.setup() for r in v.runs]
    for key in SETUP:
        row[key] = _joined(s[key] for s in setups)
    for status in ("diverged", *UNSCORED):
        row[f"{status}_seeds"] = _seeds_with(v, status) or None
    return row


def _converged(scored: list[RunRecord]) -> str | None:
    """``k/n``: the scored runs the convergence rule stopped, of those that record it."""
    known = [r.metrics["converged"] for r in scored if r.metrics.get("converged") is not None]
    return f"{sum(known)}/{len(known)}" if known else None


def aer_row(aer_runs: AlignmentRuns, label: str) -> dict[str, Any]:
    """``aer_<corpus>_{mean,sd,ci_low,ci_high,n}`` of the label's scored seeds on each corpus."""
    row: dict[str, Any] = {}
    for corpus in aer_runs.by_corpus:
        s = aer_runs.summary(corpus, label)
        key = aer_runs.column(corpus)
        row |= {
            f"{key}_mean": round_value(s.mean),
            f"{key}_sd": round_value(s.sd),
            f"{key}_ci_low": round_value(s.low),
            f"{key}_ci_high": round_value(s.high),
            f"{key}_n": s.n,
        }
    return row


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
