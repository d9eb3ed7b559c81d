"""The attention viewer's data: the same test sentences' word-level matrices for every variant.

From each panel's run (a variant's first seed with a dump, as alignments.png) this reads
its test set's dumped alignments (matrices and pieces) and keeps up to ``limit`` sentences: those every
panel has first (by id), then those only some have, each saying which panels lack it. A matrix
is turned to words as the AER is (:func:`~seq2seq.evaluation.alignments.to_word_level`: a source
word's pieces summed, a target word's averaged, EOS dropped), a (target words, source words)
grid of weights rounded to 3 decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..evaluation.alignments import read_alignments, to_word_level, words_of
from ..run_files import ALIGNMENTS, TEST_ALIGNMENTS

DEFAULT_SENTENCES = 50
DIGITS = 3


@dataclass
class ViewerData:
    """``sentences``: [{id, source, missing: [panel titles]}]; ``panels``: [{title, variant,
    run, matrices: {str(id): {src: [words], tgt: [words], w: [[weight]] (tgt x src)}}}];
    ``available`` / ``common``: how many sentences some / every panel has (before the cap);
    ``problems``: dumps or sentences that could not be read."""

    sentences: list[dict] = field(default_factory=list)
    panels: list[dict] = field(default_factory=list)
    available: int = 0
    common: int = 0
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"sentences": self.sentences, "panels": self.panels}


def word_matrix(matrix: np.ndarray, entry: dict) -> dict:
    """One dumped (tgt pieces, src pieces) matrix -> {src, tgt, w} at word level."""
    src, tgt = entry["src_tokens"], entry["tgt_tokens"]
    weights = to_word_level(matrix, src, tgt)
    return {
        "src": words_of(src),
        "tgt": words_of(tgt),
        "w": np.round(weights, DIGITS).tolist(),
    }


def load_viewer(
    panels_from: Sequence[tuple[str, str, Path]], limit: int = DEFAULT_SENTENCES
) -> ViewerData:
    """``panels_from``: (title, variant label, run directory) per panel; runs without a dump
    are left out. ``limit``: the most sentences kept (the common ones first)."""
    data = ViewerData()
    dumps: list[tuple[str, str, Path, dict[int, tuple[np.ndarray, dict]]]] = []
    for title, variant, run_dir in panels_from:
        try:
            found = read_alignments(run_dir / ALIGNMENTS)
        except (OSError, ValueError, KeyError) as err:
            data.problems.append(f"{title}: {TEST_ALIGNMENTS} unreadable ({err})")
            continue
        if found is not None:
            dumps.append((title, variant, run_dir, found))
    if not dumps:
        return data
    every = set.intersection(*(set(found) for *_, found in dumps))
    some = set.union(*(set(found) for *_, found in dumps))
    data.available, data.common = len(some), len(every)
    chosen = (sorted(every) + sorted(some - every))[: max(limit, 0)]
    for title, variant, run_dir, found in dumps:
        matrices = {}
        for i in chosen:
            if i not in found:
                continue
            try:
                matrices[str(i)] = word_matrix(*found[i])
            except (ValueError, KeyError) as err:  # a matrix that does not fit its tokens
                data.problems.append(f"{title}: sentence {i} skipped ({err})")
        data.panels.append(
            {"title": title, "variant": variant, "run": run_dir.name, "matrices": matrices}
        )
    for i in chosen:
        source = next(
            (p["matrices"][str(i)]["src"] for p in data.panels if str(i) in p["matrices"]), None
        )
        if source is None:  # no panel could read it (in the problems)
            continue
        missing = [p["title"] for p in data.panels if str(i) not in p["matrices"]]
        data.sentences.append({"id": i, "source": " ".join(source), "missing": missing})
    return data
