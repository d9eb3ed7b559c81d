"""Attention diagnostics of one run, from its dumped test alignments.

``alignments/test.npz`` (key ``str(i)``: the (tgt_steps, src_len) weights of test sentence i, a
row per emitted target token, a column per source piece) and ``alignments/test.jsonl`` (per
sentence ``id``, ``src_tokens``, ``tgt_tokens``), as seq2seq.evaluation.alignments.dump_alignments
writes them. Every row of every sentence counts once (pooled over the test set):

    entropy     entropy of the row made a distribution (divided by its sum) over log(src_len):
                0 = all mass on one source piece, 1 = uniform; 0 for a one-piece source
    max_weight  the row's largest weight
    saturated   share of rows whose largest weight is > 0.99
    eos_mass    the row's weight on the last source piece when it is the source EOS ``</s>``
                (sentences whose source does not end with ``</s>`` are left out of this one)

Rows of zeros (nothing attended) are left out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..evaluation.alignments import EOS_PIECE
from .runs import RunRecord, has_weights

SATURATED = 0.99
DIAGNOSTICS = ("entropy", "max_weight", "saturated", "eos_mass")


def matrix_rows(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Per-row normalised entropy, max weight and last-column weight of one matrix."""
    weights = np.asarray(matrix, dtype=np.float64)
    if weights.ndim != 2:
        raise ValueError(f"an alignment matrix has two dimensions, got shape {weights.shape}")
    weights = weights[weights.sum(axis=1) > 0]
    src_len = weights.shape[1]
    if not len(weights) or not src_len:
        empty = np.zeros(0)
        return {"entropy": empty, "max_weight": empty, "last": empty}
    p = weights / weights.sum(axis=1, keepdims=True)
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    entropy = -(p * logs).sum(axis=1)
    normalised = entropy / np.log(src_len) if src_len > 1 else np.zeros(len(p))
    return {"entropy": normalised, "max_weight": weights.max(axis=1), "last": weights[:, -1]}


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
    entropy, max_weight, eos = [], [], []
    with np.load(npz) as data:
        for key in data.files:
            rows = matrix_rows(data[key])
            entropy.append(rows["entropy"])
            max_weight.append(rows["max_weight"])
            tokens = src_tokens.get(key)
            if tokens and tokens[-1] == EOS_PIECE and len(tokens) == data[key].shape[1]:
                eos.append(rows["last"])
    entropy_all = np.concatenate(entropy) if entropy else np.zeros(0)
    max_all = np.concatenate(max_weight) if max_weight else np.zeros(0)
    eos_all = np.concatenate(eos) if eos else np.zeros(0)
    if not len(entropy_all):
        return {key: None for key in DIAGNOSTICS} | {"rows": 0}
    return {
        "entropy": float(entropy_all.mean()),
        "max_weight": float(max_all.mean()),
        "saturated": float((max_all > SATURATED).mean()),
        "eos_mass": float(eos_all.mean()) if len(eos_all) else None,
        "rows": int(len(entropy_all)),
    }


def run_diagnostics(records: list[RunRecord], problems: list[str]) -> dict[Path, dict]:
    """The diagnostics of every scored run with weights and a dump, by run directory; an
    unreadable dump adds a line to ``problems``."""
    diagnostics: dict[Path, dict] = {}
    for r in records:
        if r.scored and has_weights(r):
            try:
                found = attention_diagnostics(r.path / "alignments")
            except Exception as err:  # noqa: BLE001 - an unreadable dump costs its cells only
                problems.append(
                    f"`{r.label}` seed {r.seed} ({r.name}): alignments/test.npz unreadable ({err})"
                )
                continue
            if found is not None:
                diagnostics[r.path] = found
    return diagnostics
