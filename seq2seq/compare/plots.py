"""The comparison's figures: curves.png (validation loss and BLEU, mean over seeds with a
min..max band), bleu_by_length.png (likewise per source length bucket) and alignments.png (the
same test sentences' heatmaps side by side, one column per variant)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..evaluation.alignments import read_alignments
from ..run_files import ALIGNMENTS


class _Figures:
    """pyplot's ``subplots``/``close`` on plain Figures (rendered by Agg when saved): no
    backend is switched and no global figure state is touched, in a notebook too."""

    @staticmethod
    def subplots(*args, figsize=None, dpi=None, **kwargs):
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize, dpi=dpi)
        return fig, fig.subplots(*args, **kwargs)

    @staticmethod
    def close(fig) -> None:
        fig.clear()


def _pyplot() -> _Figures:
    return _Figures()


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def seed_band(
    histories: Sequence[Sequence[Mapping]], key: str, axis: str
) -> tuple[list[float], list[float], list[float], list[float]]:
    """x, mean, min, max over seeds of ``key`` at the validation steps every seed reached; x is
    the step (``axis="updates"``) or the mean training time at that step (``"time"``)."""
    by_seed = [
        {h["step"]: h for h in history if "step" in h and _finite(h.get(key))}
        for history in histories
    ]
    if not by_seed:
        return [], [], [], []
    steps = sorted(set.intersection(*(set(s) for s in by_seed)))
    xs, means, lows, highs = [], [], [], []
    for step in steps:
        values = [s[step][key] for s in by_seed]
        times = [s[step].get("train_time") for s in by_seed]
        if axis == "time":
            if not all(_finite(t) for t in times):
                continue
            xs.append(float(np.mean(times)))
        else:
            xs.append(float(step))
        means.append(float(np.mean(values)))
        lows.append(float(np.min(values)))
        highs.append(float(np.max(values)))
    return xs, means, lows, highs


def plot_curves(
    histories: Mapping[str, Sequence[Sequence[Mapping]]], axis: str, path: Path
) -> None:
    """Two panels, validation loss and validation BLEU against updates or training time: one
    line per variant (mean over its seeds), a band from the lowest to the highest seed."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    for ax, key, name in zip(
        axes, ("val_loss", "val_bleu"), ("validation loss", "validation BLEU (greedy)"), strict=True
    ):
        for label, runs in histories.items():
            xs, mean, low, high = seed_band(runs, key, axis)
            if not xs:
                continue
            (line,) = ax.plot(xs, mean, marker=".", label=f"{label} (n={len(runs)})")
            if len(runs) > 1:
                ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_xlabel("updates" if axis == "updates" else "training time (s)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(
        "mean over seeds at the validations every seed reached; band: min..max", fontsize=8
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_bleu_by_length(
    per_variant: Mapping[str, Sequence[Sequence[float | None]]],
    bucket_names: Sequence[str],
    counts: Sequence[int] | None,
    path: Path,
) -> None:
    """Test BLEU per source length bucket: per variant the mean over seeds, band min..max."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    x = np.arange(len(bucket_names))
    for label, seeds in per_variant.items():
        if not seeds:
            continue
        values = np.array([[np.nan if v is None else v for v in s] for s in seeds], dtype=float)
        seen = ~np.isnan(values).all(axis=0)
        if not seen.any():
            continue
        filled = np.where(np.isnan(values), 0.0, values)
        n = (~np.isnan(values)).sum(axis=0)
        mean = np.where(seen, filled.sum(axis=0) / np.maximum(n, 1), np.nan)
        low = np.where(seen, np.where(np.isnan(values), np.inf, values).min(axis=0), np.nan)
        high = np.where(seen, np.where(np.isnan(values), -np.inf, values).max(axis=0), np.nan)
        (line,) = ax.plot(x, mean, marker="o", label=f"{label} (n={len(seeds)})")
        if len(seeds) > 1:
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ticks = (
        [f"{n}\n({c})" for n, c in zip(bucket_names, counts, strict=True)]
        if counts
        else list(bucket_names)
    )
    ax.set_xticks(x, ticks)
    ax.set_xlabel("source length in words (sentences)")
    ax.set_ylabel("test BLEU (mean over seeds; band: min..max)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_alignment_grid(
    panels_from: Sequence[tuple[str, Path]], path: Path, sentence_ids: Sequence[int]
) -> None:
    """One column per (title, run directory) with a dump, one row per sentence id."""
    plt = _pyplot()
    panels = []
    for title, run_dir in panels_from:
        try:
            matrices = read_alignments(run_dir / ALIGNMENTS, ids=sentence_ids)
        except (OSError, ValueError, KeyError):
            continue  # the report's notes say which dumps could not be read
        if matrices is None:
            continue
        panels.append((title, matrices))
    if not panels:
        fig, ax = plt.subplots(figsize=(4, 1.5), dpi=100)
        ax.axis("off")
        ax.text(
            0.5,
            0.5,
            "no alignments dumped (train with dump_alignments=true)",
            ha="center",
            va="center",
            fontsize=8,
        )
        fig.savefig(path)
        plt.close(fig)
        return
    fig, axes = plt.subplots(
        len(sentence_ids),
        len(panels),
        figsize=(3.2 * len(panels), 3.2 * len(sentence_ids)),
        dpi=90,
        squeeze=False,
    )
    for col, (title, matrices) in enumerate(panels):
        for row, sid in enumerate(sentence_ids):
            ax = axes[row][col]
            if sid not in matrices:
                ax.axis("off")
                continue
            matrix, entry = matrices[sid]
            ax.imshow(matrix, cmap="Greys", vmin=0, aspect="auto")
            ax.set_xticks(
                range(len(entry["src_tokens"])), entry["src_tokens"], rotation=90, fontsize=5
            )
            ax.set_yticks(range(len(entry["tgt_tokens"])), entry["tgt_tokens"], fontsize=5)
            ax.set_title(f"{title} #{sid}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
