"""Attention diagnostics of one run, from its dumped test alignments.

The matrices (``run_files.TEST_ALIGNMENTS``, key ``str(i)``: the (tgt_steps, src_len) weights
of test sentence i, a row per emitted target token, a column per source piece) and their index
(``run_files.TEST_ALIGNMENT_INDEX``, per sentence ``id``, ``src_tokens``, ``tgt_tokens``), as seq2seq.evaluation.alignments.dump_alignments
writes them. Every row of every sentence counts once (pooled over the test set):

    entropy     entropy of the row made a distribution (divided by its sum) over log(src_len):
                0 = all mass on one source piece, 1 = uniform; 0 for a one-piece source
    window_entropy  the same entropy over log(the row's support), the pieces with a weight
                > 0: a windowed variant (local-m, local-p) is measured within its window; for
                a global softmax it equals ``entropy``
    row_sum     the row's total weight (1 for a softmax; below 1 where local-p's Gaussian
                truncates its window)
    max_weight  the row's largest weight
    saturated   share of rows whose largest weight is > 0.99
    collapse    share of rows whose argmax is the sentence's most-attended source piece (the
                column with the largest summed weight): 1 when every target step attends the
                same piece (collapse), 1/length for a diagonal; sharp rows (saturated) that
                move along the source stay low. A row whose largest weight is tied (uniform
                attention) is on no one piece: it counts 0
    eos_mass    the row's weight on the last source piece when it is the source EOS ``</s>``
                (sentences whose source does not end with ``</s>`` are left out of this one)

Rows of zeros (nothing attended) are left out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..evaluation.alignments import EOS_PIECE
from ..run_files import ALIGNMENTS, TEST_ALIGNMENTS
from .runs import RunRecord, has_weights

SATURATED = 0.99
DIAGNOSTICS = (
    "entropy",
    "window_entropy",
    "row_sum",
    "max_weight",
    "saturated",
    "collapse",
    "eos_mass",
)
ROW_KEYS = ("entropy", "window_entropy", "row_sum", "max_weight", "on_top_column", "last")


def _normalised(entropy: np.ndarray, support: np.ndarray) -> np.ndarray:
    """entropy / log(support), 0 where the support is one piece."""
    logs = np.log(np.maximum(support, 1))
    return np.divide(entropy, logs, out=np.zeros_like(entropy), where=support > 1)


def _ties(weights: np.ndarray) -> np.ndarray:
    """Per row, how many entries equal its largest (to float32 rounding)."""
    top = weights.max(axis=1, keepdims=True)
    return np.isclose(weights, top, rtol=1e-6, atol=0).sum(axis=1)


def matrix_rows(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Per row of one (tgt_steps, src_len) matrix: normalised entropy over the source and over
    the row's support, row sum, max weight, whether its argmax is the matrix's most-attended
    column, and the last column's weight."""
    weights = np.asarray(matrix, dtype=np.float64)
    if weights.ndim != 2:
        raise ValueError(f"an alignment matrix has two dimensions, got shape {weights.shape}")
    weights = weights[weights.sum(axis=1) > 0]
    src_len = weights.shape[1]
    if not len(weights) or not src_len:
        return {key: np.zeros(0) for key in ROW_KEYS}
    row_sum = weights.sum(axis=1)
    p = weights / row_sum[:, None]
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    entropy = -(p * logs).sum(axis=1)
    top_column = int(weights.sum(axis=0).argmax())
    on_top = (weights.argmax(axis=1) == top_column) & (_ties(weights) == 1)
    return {
        "entropy": _normalised(entropy, np.full(len(p), src_len)),
        "window_entropy": _normalised(entropy, (p > 0).sum(axis=1)),
        "row_sum": row_sum,
        "max_weight": weights.max(axis=1),
        "on_top_column": on_top.astype(np.float64),
        "last": weights[:, -1],
    }


def attention_diagnostics(align_dir: Path, name: str = "test") -> dict[str, float | None] | None:
    """The diagnostics of ``align_dir/{name}.npz`` (and its ``.jsonl`` for the source EOS), or
    those an export saved from the full dump (``{name}.diagnostics.json``); None when there is
    no dump. An unreadable dump raises (the caller notes it)."""
    npz, index = align_dir / f"{name}.npz", align_dir / f"{name}.jsonl"
    summary = align_dir / f"{name}.diagnostics.json"  # an exported run's (seq2seq.compare.export)
    if summary.is_file():
        return json.loads(summary.read_text(encoding="utf-8"))
    if not npz.is_file():
        return None
    src_tokens: dict[str, list[str]] = {}
    if index.is_file():
        for line in index.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                src_tokens[str(entry["id"])] = entry["src_tokens"]
    pooled: dict[str, list[np.ndarray]] = {key: [] for key in ROW_KEYS}
    eos = []
    with np.load(npz) as data:
        for key in data.files:
            rows = matrix_rows(data[key])
            for name in ROW_KEYS:
                pooled[name].append(rows[name])
            tokens = src_tokens.get(key)
            if tokens and tokens[-1] == EOS_PIECE and len(tokens) == data[key].shape[1]:
                eos.append(rows["last"])
    every = {k: np.concatenate(v) if v else np.zeros(0) for k, v in pooled.items()}
    eos_all = np.concatenate(eos) if eos else np.zeros(0)
    if not len(every["entropy"]):
        return {key: None for key in DIAGNOSTICS} | {"rows": 0}
    return {
        "entropy": float(every["entropy"].mean()),
        "window_entropy": float(every["window_entropy"].mean()),
        "row_sum": float(every["row_sum"].mean()),
        "max_weight": float(every["max_weight"].mean()),
        "saturated": float((every["max_weight"] > SATURATED).mean()),
        "collapse": float(every["on_top_column"].mean()),
        "eos_mass": float(eos_all.mean()) if len(eos_all) else None,
        "rows": int(len(every["entropy"])),
    }


def run_diagnostics(records: list[RunRecord], problems: list[str]) -> dict[Path, dict]:
    """The diagnostics of every scored run with weights and a dump, by run directory; an
    unreadable dump adds a line to ``problems``."""
    diagnostics: dict[Path, dict] = {}
    for r in records:
        if r.scored and has_weights(r):
            try:
                found = attention_diagnostics(r.path / ALIGNMENTS)
            except Exception as err:  # noqa: BLE001 - an unreadable dump costs its cells only
                problems.append(
                    f"`{r.label}` seed {r.seed} ({r.name}): {TEST_ALIGNMENTS} unreadable ({err})"
                )
                continue
            if found is not None:
                diagnostics[r.path] = found
    return diagnostics
