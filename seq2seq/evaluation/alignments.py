"""Alignment matrices: dump, aggregate subwords to words, hard alignments, AER.

A soft alignment is a (tgt_len, src_len) matrix: row j holds the attention weights the decoder
used when it emitted target token j, over source tokens (the source includes its EOS).

Dump format (``alignments/<name>.npz`` + ``alignments/<name>.jsonl``): one compressed npz whose
key ``str(i)`` is the float32 matrix of sentence i (``np.load(path)["0"]``), and a JSON Lines
index with, per sentence, ``id``, ``src_tokens``, ``tgt_tokens`` (subwords; the matrix has one row
per target token and one column per source token), ``shape`` and the word-level hard alignment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

WORD_START = "\u2581"  # sentencepiece's word-boundary marker
EOS_PIECE = "</s>"


def word_groups(pieces: Sequence[str]) -> list[list[int]]:
    """Indices of the subword pieces of each word; EOS and special pieces belong to no word.

    A piece starting with ``▁`` opens a word; a piece that is only ``▁`` opens a word whose text
    follows in the next piece (sentencepiece splits some punctuation like that).
    """
    groups: list[list[int]] = []
    open_marker = False
    for i, piece in enumerate(pieces):
        if piece in (EOS_PIECE, "<s>", "<pad>"):
            continue
        if piece.startswith(WORD_START) or not groups:
            if open_marker and groups:
                groups[-1].append(i)
            else:
                groups.append([i])
            open_marker = piece == WORD_START
        else:
            groups[-1].append(i)
            open_marker = False
    return groups


def words_of(pieces: Sequence[str]) -> list[str]:
    return [
        "".join(pieces[i] for i in group).replace(WORD_START, "") for group in word_groups(pieces)
    ]


def to_word_level(
    weights: np.ndarray, src_pieces: Sequence[str], tgt_pieces: Sequence[str]
) -> np.ndarray:
    """Merge a (tgt_pieces, src_pieces) matrix into (tgt_words, src_words).

    Source columns of a word are summed (attention mass on the word); target rows of a word are
    averaged (a word's alignment is the mean of its pieces'). EOS rows and columns are dropped.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(tgt_pieces), len(src_pieces)):
        raise ValueError(
            f"matrix {weights.shape} does not match {len(tgt_pieces)} x {len(src_pieces)} pieces"
        )
    src_groups, tgt_groups = word_groups(src_pieces), word_groups(tgt_pieces)
    columns = (
        np.stack([weights[:, g].sum(axis=1) for g in src_groups], axis=1)
        if src_groups
        else np.zeros((len(tgt_pieces), 0))
    )
    if not tgt_groups:
        return np.zeros((0, len(src_groups)))
    return np.stack([columns[g].mean(axis=0) for g in tgt_groups], axis=0)


def hard_alignment(
    word_weights: np.ndarray, *, method: str = "argmax", threshold: float = 0.3
) -> set[tuple[int, int]]:
    """Links (src_word, tgt_word) from a (tgt_words, src_words) matrix.

    argmax: each target word links to its highest-weight source word.
    threshold: every pair whose weight is at least ``threshold``.
    """
    if word_weights.size == 0:
        return set()
    if method == "argmax":
        return {(int(word_weights[j].argmax()), j) for j in range(word_weights.shape[0])}
    if method == "threshold":
        tgt_idx, src_idx = np.nonzero(word_weights >= threshold)
        return set(zip(src_idx.tolist(), tgt_idx.tolist(), strict=True))
    raise ValueError(f"unknown hard alignment method {method!r}; valid: argmax, threshold")


def intersect(
    forward: set[tuple[int, int]], backward: set[tuple[int, int]]
) -> set[tuple[int, int]]:
    """Intersection of a src->tgt alignment and a tgt->src one (given as (tgt, src) links)."""
    return forward & {(s, t) for t, s in backward}


def to_pharaoh(links: Iterable[tuple[int, int]]) -> str:
    return " ".join(f"{s}-{t}" for s, t in sorted(links, key=lambda link: (link[1], link[0])))


_LINK = re.compile(r"^(\d+)([-?])(\d+)(?:-([SP]))?$")


def parse_pharaoh(line: str) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """Gold links -> (sure, possible); sure links are possible too (Och and Ney 2003).

    Accepts ``i-j`` (sure), ``i?j`` and ``i-j-P`` (possible), ``i-j-S`` (sure).
    """
    sure, possible = set(), set()
    for token in line.split():
        match = _LINK.match(token)
        if not match:
            raise ValueError(f"bad alignment link {token!r}; expected i-j, i?j or i-j-P")
        link = (int(match.group(1)), int(match.group(3)))
        possible.add(link)
        if match.group(2) == "-" and match.group(4) != "P":
            sure.add(link)
    return sure, possible


def alignment_error_rate(
    predicted: Sequence[set[tuple[int, int]]],
    sure: Sequence[set[tuple[int, int]]],
    possible: Sequence[set[tuple[int, int]]],
) -> dict[str, float]:
    """Corpus AER = 1 - (|A∩S| + |A∩P|) / (|A| + |S|), with precision |A∩P|/|A| and recall |A∩S|/|S|."""
    if not len(predicted) == len(sure) == len(possible):
        raise ValueError(f"{len(predicted)} predicted alignments but {len(sure)} gold ones")
    a_s = sum(len(a & s) for a, s in zip(predicted, sure, strict=True))
    a_p = sum(len(a & (p | s)) for a, s, p in zip(predicted, sure, possible, strict=True))
    n_a = sum(len(a) for a in predicted)
    n_s = sum(len(s) for s in sure)
    return {
        "aer": 1.0 - (a_s + a_p) / max(n_a + n_s, 1),
        "precision": a_p / max(n_a, 1),
        "recall": a_s / max(n_s, 1),
    }


def hypothesis_pieces(tokenizer, hyp) -> list[str]:
    """Target pieces of a hypothesis, with ``</s>`` when it ended with EOS (a matrix row too)."""
    return [*tokenizer.tgt_pieces(hyp.tokens), *([EOS_PIECE] if hyp.finished else [])]


def hypothesis_matrix(hyp, src_len: int) -> np.ndarray:
    """The (len(tokens) + finished, src_len) matrix of a hypothesis: a row per emitted token."""
    weights = hyp.attn.float().cpu().numpy() if hasattr(hyp.attn, "cpu") else np.asarray(hyp.attn)
    return weights[: len(hyp.tokens) + int(hyp.finished), :src_len]


def pharaoh_for(run, source: str, hyp, alignment_cfg) -> str:
    """Word-level hard alignment of one translated line (translate's print_alignment)."""
    if hyp.attn is None:
        return ""
    src_ids = run.tokenizer.encode_src([source])[0]
    src_pieces = run.tokenizer.src_pieces(src_ids)
    tgt_pieces = hypothesis_pieces(run.tokenizer, hyp)
    words = to_word_level(hypothesis_matrix(hyp, len(src_pieces)), src_pieces, tgt_pieces)
    return to_pharaoh(
        hard_alignment(words, method=alignment_cfg.hard, threshold=alignment_cfg.threshold)
    )


def dump_alignments(
    tokenizer,
    sources: Sequence[str],
    hyps: Sequence,
    out_dir: str | Path,
    *,
    name: str,
    has_alignment: bool = True,
    hard: str = "argmax",
    threshold: float = 0.3,
    plot_ids: Sequence[int] | None = None,
    plot_first: int = 5,
) -> dict:
    """Write ``out_dir/alignments/{name}.npz|.jsonl|.pharaoh`` and heatmaps ``{name}_{i}.png``.

    Returns a summary; for a model without attention (``attention=none``) writes nothing and
    says so.
    """
    from .heatmap import save_alignment_png

    if not has_alignment:
        message = "attention=none has no alignment: nothing dumped"
        print(message)
        return {"dumped": 0, "note": message}
    align_dir = Path(out_dir) / "alignments"
    align_dir.mkdir(parents=True, exist_ok=True)
    src_ids = tokenizer.encode_src(list(sources))
    matrices, index = {}, []
    for i, (ids, hyp) in enumerate(zip(src_ids, hyps, strict=True)):
        src_pieces = tokenizer.src_pieces(ids)
        tgt_pieces = hypothesis_pieces(tokenizer, hyp)
        matrix = hypothesis_matrix(hyp, len(src_pieces))
        matrices[str(i)] = matrix.astype(np.float32)
        links = hard_alignment(
            to_word_level(matrix, src_pieces, tgt_pieces), method=hard, threshold=threshold
        )
        index.append(
            {
                "id": i,
                "src_tokens": src_pieces,
                "tgt_tokens": tgt_pieces,
                "shape": list(matrix.shape),
                "word_alignment": to_pharaoh(links),
            }
        )
    np.savez_compressed(align_dir / f"{name}.npz", **matrices)
    with open(align_dir / f"{name}.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(entry, ensure_ascii=False) + "\n" for entry in index)
    with open(align_dir / f"{name}.pharaoh", "w", encoding="utf-8") as handle:
        handle.writelines(entry["word_alignment"] + "\n" for entry in index)
    chosen = list(plot_ids) if plot_ids else list(range(min(plot_first, len(index))))
    plotted = 0
    for i in chosen:
        if 0 <= i < len(index):
            entry = index[i]
            save_alignment_png(
                align_dir / f"{name}_{i}.png",
                matrices[str(i)],
                entry["src_tokens"],
                entry["tgt_tokens"],
                title=f"{name} sentence {i}",
            )
            plotted += 1
    return {"dumped": len(index), "dir": str(align_dir), "plots": plotted}


def teacher_forced_attention(
    model,
    tokenizer,
    sources: Sequence[str],
    references: Sequence[str],
    *,
    device,
    amp_dtype=None,
    batch_size: int = 64,
) -> list[np.ndarray]:
    """Attention while the model reads the *reference* (forced decoding), one matrix per pair.

    Each matrix is (len(reference pieces) + 1, len(source pieces)): a row per target piece and
    one for EOS. This is what AER against gold alignments of (source, reference) is computed on.
    """
    import torch

    from ..data.batching import collate
    from ..runtime import autocast

    if not model.has_alignment:
        raise ValueError(
            "this model has no attention (attention=none): there is no alignment to score"
        )
    src_ids = tokenizer.encode_src(list(sources))
    tgt_ids = tokenizer.encode_tgt(list(references))
    matrices: list[np.ndarray] = []
    model.eval()
    with torch.inference_mode(), autocast(torch.device(device), amp_dtype):
        for start in range(0, len(src_ids), batch_size):
            idx = list(range(start, min(start + batch_size, len(src_ids))))
            batch = collate([src_ids[i] for i in idx], [tgt_ids[i] for i in idx], idx).to(device)
            attn = model(
                batch.src, batch.src_mask, batch.tgt_in, batch.tgt_mask, need_attn=True
            ).attn_weights
            attn = attn.float().cpu().numpy()  # (batch, tgt_len, src_len)
            for row, i in enumerate(idx):
                matrices.append(attn[row, : len(tgt_ids[i]) + 1, : len(src_ids[i])])
    return matrices


def parse_gold(
    tokenizer, sources, references, gold_lines, *, path: str | Path | None = None
) -> tuple[list[set[tuple[int, int]]], list[set[tuple[int, int]]]]:
    """(sure, possible) links of each gold line; DataError naming the file (``path``) and line
    of a malformed link or of one outside the pair's words (0-based, source-target)."""
    from ..data.corpus import DataError

    where = str(path) if path is not None else "gold alignments"
    sure, possible = [], []
    for line_no, (source, reference, gold) in enumerate(
        zip(sources, references, gold_lines, strict=True), start=1
    ):
        try:
            s, p = parse_pharaoh(gold)
        except ValueError as err:
            raise DataError(f"{where} line {line_no}: {err}") from None
        src_words = len(word_groups(tokenizer.src_pieces(tokenizer.encode_src([source])[0])))
        tgt_words = len(word_groups(tokenizer.tgt_pieces(tokenizer.encode_tgt([reference])[0])))
        for i, j in sorted(p):
            if i >= src_words or j >= tgt_words:
                raise DataError(
                    f"{where} line {line_no}: link {i}-{j} is out of range: the source has "
                    f"{src_words} words and the reference {tgt_words} (0-based source-target "
                    "indices); fix the link or the line order"
                )
        sure.append(s)
        possible.append(p)
    return sure, possible


def score_against_gold(
    tokenizer,
    sources,
    references,
    matrices,
    gold_lines,
    *,
    hard="argmax",
    threshold=0.3,
    path: str | Path | None = None,
) -> dict:
    """Word-level hard alignments of teacher-forced matrices scored with AER against gold lines
    (checked first by :func:`parse_gold`; ``path`` names their file in its messages)."""
    if len(gold_lines) != len(sources):
        raise ValueError(
            f"{len(gold_lines)} gold alignment lines but {len(sources)} sentence pairs"
        )
    sure, possible = parse_gold(tokenizer, sources, references, gold_lines, path=path)
    predicted = []
    for source, reference, matrix in zip(sources, references, matrices, strict=True):
        src_pieces = tokenizer.src_pieces(tokenizer.encode_src([source])[0])
        tgt_pieces = [*tokenizer.tgt_pieces(tokenizer.encode_tgt([reference])[0]), EOS_PIECE]
        words = to_word_level(matrix, src_pieces, tgt_pieces)
        predicted.append(hard_alignment(words, method=hard, threshold=threshold))
    return alignment_error_rate(predicted, sure, possible)
