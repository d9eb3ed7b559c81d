"""Runs -> a comparison of variants over seeds: tables and plots (``seq2seq-compare``).

``compare(paths, out_dir)`` reads training run directories (or multirun directories holding
them), groups the runs by variant (the run's label; its runs are its seeds, ``trainer.seed``)
and writes:

    comparison.md     held fixed (data, model, wiring, budget, precision, decoding, seeds: the
                      setup columns equal for all runs) and the budget the curves use, then one
                      row per variant: n scored seeds, test BLEU mean ± sd [95% t interval],
                      chrF mean ± sd, ΔBLEU against the baseline (mean of the per-seed paired
                      differences [95% CI]), seeds where sacreBLEU's paired bootstrap of
                      variant@s against baseline@s gives p < 0.05 (k/n), steps, attention
                      diagnostics (entropy, max weight, saturated rows, EOS mass), test/gold AER
                      and the setup columns that differ; a speed table (train time, tokens/s);
                      notes: the method, p-values per seed, Kendall's tau-b of the rankings
                      between seeds, failed / diverged / unfinished / broken runs by variant and
                      seed, the BLEU signature
    comparison.csv    the same per variant, machine-readable (every number, CI bounds included)
    runs.csv          one row per run: variant, seed, status, steps, time, tokens/s, BLEU,
                      chrF, the per-seed p-value, diagnostics, setup, error
    curves.png        validation loss and BLEU against updates (budget in updates) or training
                      time: mean over seeds, band min..max
    bleu_by_length.png  test BLEU by source length bucket: mean over seeds, band min..max
    alignments.png    the same test sentences' heatmaps side by side, one column per variant
                      (its first seed with a dump)
    comparison.html   with ``html=``: all of it in one self-contained page (no network), with
                      an attention viewer: pick a test sentence, see every variant's matrix
"""

from __future__ import annotations

from .diagnostics import attention_diagnostics, matrix_rows
from .report import compare
from .runs import RunRecord, discover_runs, is_run_dir, load_record, run_setup, variant_label
from .scoring import LENGTH_BUCKETS, bleu_by_length, paired_bootstrap
from .stats import Summary, kendall_tau_b, ranking_stability, summarize, t_975
from .variants import Variant, choose_baseline, group_runs

__all__ = [
    "LENGTH_BUCKETS",
    "RunRecord",
    "Summary",
    "Variant",
    "attention_diagnostics",
    "bleu_by_length",
    "choose_baseline",
    "compare",
    "discover_runs",
    "group_runs",
    "is_run_dir",
    "kendall_tau_b",
    "load_record",
    "matrix_rows",
    "paired_bootstrap",
    "ranking_stability",
    "run_setup",
    "summarize",
    "t_975",
    "variant_label",
]
