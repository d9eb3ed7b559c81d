"""Alignment heatmaps: target tokens as rows, source tokens as columns."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # not pyplot: no backend or global state is touched


def alignment_figure(
    weights: np.ndarray,
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    title: str | None = None,
) -> Figure:
    """A heatmap of a (tgt_len, src_len) matrix, readable for 30-token sentences."""
    weights = np.asarray(weights, dtype=np.float32)
    rows, cols = weights.shape
    if rows != len(tgt_tokens) or cols != len(src_tokens):
        raise ValueError(
            f"matrix {weights.shape} does not match {len(tgt_tokens)} target x {len(src_tokens)} source tokens"
        )
    width, height = 2.0 + 0.32 * cols, 1.5 + 0.32 * rows
    fig = Figure(figsize=(min(max(width, 4), 24), min(max(height, 3), 24)), dpi=100)
    ax = fig.subplots()
    ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=max(1e-6, float(weights.max())), aspect="auto")
    ax.set_xticks(range(cols), labels=list(src_tokens), rotation=90, fontsize=8)
    ax.set_yticks(range(rows), labels=list(tgt_tokens), fontsize=8)
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def save_alignment_png(
    path: str | Path, weights, src_tokens, tgt_tokens, title: str | None = None
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = alignment_figure(weights, src_tokens, tgt_tokens, title)
    fig.savefig(path)
    return path
