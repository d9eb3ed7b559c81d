"""``compare(paths, out_dir)``: load the runs, score them, write the report.

Load: the run directories' records grouped into variants over seeds (:mod:`.variants`), the
baseline, the AER runs and the gold AERs. Score: the test hypotheses against the references
each run directory holds, paired with the baseline seed by seed (:mod:`.scoring`), the attention
diagnostics and the ranking's stability. Write: runs.csv and comparison.csv (:mod:`.tables`),
comparison.md (:mod:`.markdown`), the plots and, asked for, comparison.html; the files are
described in seq2seq/compare/__init__.py. Only run directories are read (no corpus).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..run_files import TEST_ALIGNMENTS
from .diagnostics import run_diagnostics
from .grid import missing_jobs
from .html_report import write_html
from .markdown import report_sections
from .plots import plot_alignment_grid, plot_bleu_by_length, plot_curves
from .runs import RunRecord, budget_axis, discover_runs, load_record, set_gold_aer
from .scoring import (
    RunTexts,
    bleu_by_length,
    length_buckets,
    length_counts,
    pair_with_baseline,
    read_texts,
)
from .significance import Significance, significance
from .tables import aer_row, run_rows, variant_row, write_csv
from .variants import AlignmentRuns, Variant, choose_baseline, group_runs
from .viewer import DEFAULT_SENTENCES, load_viewer

PLOTS = {
    "curves.png": "validation loss and BLEU (curves.png)",
    "bleu_by_length.png": "test BLEU by source length (bleu_by_length.png)",
    "alignments.png": "test sentences' attention per variant (alignments.png)",
}


@dataclass
class Runs:
    """What a comparison is over: the runs, their variants, the baseline, the AER runs, and the
    problems found so far (notes of the report)."""

    records: list[RunRecord]
    variants: dict[str, Variant]
    base: str | None
    aer_runs: AlignmentRuns
    problems: list[str] = field(default_factory=list)


@dataclass
class Scores:
    """Per variant, seed -> paired difference and bootstrap p-value against the baseline; the
    test texts and diagnostics by run directory; the tests over seeds (:mod:`.significance`)."""

    texts: dict[Path, RunTexts]
    diffs: dict[str, dict[int, float]]
    pvalues: dict[str, dict[int, float]]
    diagnostics: dict[Path, dict]
    significance: Significance


def load_runs(
    paths: list[str | Path],
    *,
    baseline: str | None = None,
    aer_paths: list[str | Path] | None = None,
    gold: str | None = None,
) -> Runs:
    run_dirs = discover_runs(paths)
    records = [load_record(p) for p in run_dirs]
    variants = group_runs(records)
    runs = Runs(records, variants, choose_baseline(variants, baseline), AlignmentRuns())
    runs.problems += missing_jobs(paths, run_dirs)
    runs.aer_runs = AlignmentRuns.load(aer_paths or [], variants, runs.problems)
    for r in records:
        set_gold_aer(r, gold, runs.problems)
    return runs


def score_runs(runs: Runs, n_bootstrap: int) -> Scores:
    texts = read_texts(runs.records, runs.problems)
    diffs, pvalues = pair_with_baseline(runs.variants, runs.base, texts, n_bootstrap)
    diagnostics = run_diagnostics(runs.records, runs.problems)
    tests = significance(runs.variants, runs.base)
    return Scores(texts, diffs, pvalues, diagnostics, tests)


def compare(
    paths: list[str | Path],
    out_dir: str | Path,
    *,
    baseline: str | None = None,
    n_bootstrap: int = 1000,
    alignment_ids: list[int] | None = None,
    aer_paths: list[str | Path] | None = None,
    gold: str | None = None,
    html: str | Path | None = None,
    html_sentences: int = DEFAULT_SENTENCES,
) -> list[dict[str, Any]]:
    """Write the comparison files into ``out_dir``; return the per-run rows (runs.csv).

    ``aer_paths``: runs of the same variants on a corpus with gold links (e.g. the synthetic
    reversal corpus, ``data=reverse``): their ``test_aer`` fills one AER column per corpus
    beside the variant of the same label; their BLEU is not compared.

    ``gold``: the name of the ``seq2seq-evaluate ... gold_alignments=`` evaluation
    (``eval/<name>/``) whose AER is each run's gold AER; by default a run's only one.

    ``html``: also write the report as one self-contained page there (tables, plots and an
    attention viewer of up to ``html_sentences`` test sentences; see :mod:`.html_report`).
    """
    if html is not None and html_sentences < 1:
        raise ConfigError(f"html_sentences={html_sentences}: the viewer needs at least 1")
    out_dir = Path(out_dir)
    runs = load_runs(paths, baseline=baseline, aer_paths=aer_paths, gold=gold)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores = score_runs(runs, n_bootstrap)
    return write_report(
        runs,
        scores,
        out_dir,
        n_bootstrap=n_bootstrap,
        alignment_ids=alignment_ids,
        html=html,
        html_sentences=html_sentences,
    )


def write_report(
    runs: Runs,
    scores: Scores,
    out_dir: Path,
    *,
    n_bootstrap: int,
    alignment_ids: list[int] | None,
    html: str | Path | None,
    html_sentences: int,
) -> list[dict[str, Any]]:
    """runs.csv, comparison.csv, comparison.md, the plots and (``html``) the page; return the
    per-run rows."""
    records, variants, base = runs.records, runs.variants, runs.base
    rows = run_rows(records, variants, base, scores.pvalues, scores.diagnostics)
    variant_rows = [
        variant_row(
            v,
            base,
            scores.diffs[label],
            scores.pvalues[label],
            scores.diagnostics,
            scores.significance,
        )
        | aer_row(runs.aer_runs, label)
        for label, v in variants.items()
    ]
    write_csv(out_dir / "runs.csv", rows)
    write_csv(out_dir / "comparison.csv", variant_rows)

    axis = budget_axis([r for r in records if r.scored] or records)
    sections = report_sections(
        records,
        variants,
        variant_rows,
        base=base,
        axis=axis,
        tests=scores.significance,
        n_bootstrap=n_bootstrap,
        problems=runs.problems,
        aer_runs=runs.aer_runs,
    )
    (out_dir / "comparison.md").write_text(sections.markdown(), encoding="utf-8")

    plot_curves(
        {label: [r.history for r in v.scored if r.history] for label, v in variants.items()},
        axis,
        out_dir / "curves.png",
    )
    texts = scores.texts
    first = next(iter(texts.values()), None)
    plot_bleu_by_length(
        {
            label: [
                bleu_by_length(
                    texts[r.path].hyps, texts[r.path].references, texts[r.path].sources, r.tokenize
                )
                for r in v.scored
                if r.path in texts
            ]
            for label, v in variants.items()
        },
        length_buckets(),
        length_counts(first.sources) if first else None,
        out_dir / "bleu_by_length.png",
    )
    panels = []  # (title, variant, run directory): each variant's first seed with a dump
    for label, v in variants.items():
        dumped = [r for r in v.scored if (r.path / TEST_ALIGNMENTS).is_file()]
        if dumped:
            panels.append((f"{label} (seed {dumped[0].seed})", label, dumped[0].path))
    plot_alignment_grid(
        [(title, run) for title, _, run in panels],
        out_dir / "alignments.png",
        alignment_ids or [0, 1],
    )
    if html is not None:
        write_html(
            Path(html),
            sections,
            plots=[(caption, out_dir / name) for name, caption in PLOTS.items()],
            viewer=load_viewer(panels, html_sentences),
            limit=html_sentences,
            without_dump=[label for label in variants if label not in {p[1] for p in panels}],
        )
    return rows
