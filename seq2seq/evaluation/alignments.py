"""Alignment matrices: dump, aggregate subwords to words, hard alignments (AER: aer.py).

A soft alignment is a (tgt_len, src_len) matrix: row j holds the attention weights the decoder
used when it emitted target token j, over source tokens (the source includes its EOS).

Dump format (``alignments/<name>.npz`` + ``alignments/<name>.jsonl``): one compressed npz whose
key ``str(i)`` is the float32 matrix of sentence i (``np.load(path)["0"]``), and a JSON Lines
index with, per sentence, ``id``, ``src_tokens``, ``tgt_tokens`` (subwords; the matrix has one row
per target token and one column per source token), ``shape`` and the word-level hard alignment.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..run_files import ALIGNMENTS

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


def encode_words(processor, words: Sequence[str]) -> tuple[list[int], list[list[int]]]:
    """Subword ids of pre-tokenized ``words`` and, per word, the indices of its pieces.

    Each word is encoded alone and the ids concatenated: the word -> pieces map is exact by
    construction, whatever the pieces look like (a piece without ``▁`` opening a word, e.g.
    ``<unk>``, or a word whose characters normalise away and has no piece at all), where
    :func:`word_groups` would merge or shift words. For our sentencepiece models (whitespace
    is a hard boundary: no piece spans two words) the ids are exactly those of
    ``" ".join(words)`` encoded whole, i.e. what the model reads. ``processor``: a
    sentencepiece processor (``tokenizer.src`` / ``tokenizer.tgt``); no EOS is added.
    """
    ids: list[int] = []
    groups: list[list[int]] = []
    for word_ids in processor.encode(list(words), out_type=int) if words else []:
        groups.append(list(range(len(ids), len(ids) + len(word_ids))))
        ids.extend(word_ids)
    return ids, groups


def words_matrix(
    weights: np.ndarray, src_groups: Sequence[Sequence[int]], tgt_groups: Sequence[Sequence[int]]
) -> np.ndarray:
    """(target pieces, source pieces) -> (target words, source words) for given word groups:
    a source word's columns are summed, a target word's rows averaged (as :func:`to_word_level`).
    Columns and rows in no group (EOS) are dropped; a word with no piece gets zeros."""
    weights = np.asarray(weights, dtype=np.float64)
    rows, cols = weights.shape
    for side, groups, size in (("source", src_groups, cols), ("target", tgt_groups, rows)):
        if any(i >= size for g in groups for i in g):
            raise ValueError(f"{side} word groups index past the matrix's {size} {side} pieces")
    columns = np.zeros((rows, len(src_groups)))
    for k, group in enumerate(src_groups):
        if len(group):
            columns[:, k] = weights[:, list(group)].sum(axis=1)
    words = np.zeros((len(tgt_groups), len(src_groups)))
    for k, group in enumerate(tgt_groups):
        if len(group):
            words[k] = columns[list(group)].mean(axis=0)
    return words


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


# the 8 neighbours of a link, in the order of Koehn's pseudo-code (Moses' grow-diag)
_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def symmetrize(
    forward: set[tuple[int, int]], backward: set[tuple[int, int]], method: str | None
) -> set[tuple[int, int]]:
    """Combine two directions' (src, tgt) links of one sentence pair (``backward``: the reverse
    model's links already turned into (src, tgt)).

    ``none``/None: ``forward`` alone; ``intersection``; ``union``; ``grow-diag``: start from the
    intersection and repeatedly add union links next to a link (the 8 neighbours) that align a
    still unaligned source or target word; ``grow-diag-final``: then, over ``forward`` and then
    ``backward``, add each link of theirs with either word unaligned (Koehn et al. 2003; the
    Moses default ``grow-diag-final`` is this, with ``final``); ``grow-diag-final-and``: the
    same with both words unaligned. Scans run over source words, then target words, in order,
    seeing links added earlier in the same scan (Koehn's pseudo-code, as in the Moses manual).
    """
    if method in (None, "none"):
        return set(forward)
    if method == "intersection":
        return forward & backward
    if method == "union":
        return forward | backward
    if method not in ("grow-diag", "grow-diag-final", "grow-diag-final-and"):
        raise ValueError(
            f"unknown symmetrization {method!r}; valid: none, intersection, union, grow-diag, "
            "grow-diag-final, grow-diag-final-and"
        )
    union = forward | backward
    links = forward & backward
    src_aligned = {s for s, _ in links}
    tgt_aligned = {t for _, t in links}

    def add(link: tuple[int, int]) -> None:
        links.add(link)
        src_aligned.add(link[0])
        tgt_aligned.add(link[1])

    n_src = 1 + max((s for s, _ in union), default=-1)
    n_tgt = 1 + max((t for _, t in union), default=-1)
    grown = True
    while grown:  # grow-diag
        grown = False
        for s in range(n_src):
            for t in range(n_tgt):
                if (s, t) not in links:
                    continue
                for ds, dt in _NEIGHBOURS:
                    new = (s + ds, t + dt)
                    if new in union and (new[0] not in src_aligned or new[1] not in tgt_aligned):
                        add(new)
                        grown = True
    if method == "grow-diag":
        return links
    both = method == "grow-diag-final-and"
    for direction in (forward, backward):  # final(forward), then final(backward)
        for s, t in sorted(direction):
            if (s, t) in links:
                continue
            free_s, free_t = s not in src_aligned, t not in tgt_aligned
            if (free_s and free_t) if both else (free_s or free_t):
                add((s, t))
    return links


def to_pharaoh(links: Iterable[tuple[int, int]]) -> str:
    return " ".join(f"{s}-{t}" for s, t in sorted(links, key=lambda link: (link[1], link[0])))


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
    align_dir = Path(out_dir) / ALIGNMENTS
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


def read_alignments(
    align_dir: str | Path, name: str = "test", ids: Iterable[int] | None = None
) -> dict[int, tuple[np.ndarray, dict]] | None:
    """Sentence id -> (its (tgt pieces, src pieces) matrix, its index entry) from the dump that
    :func:`dump_alignments` wrote (``{name}.npz`` + ``{name}.jsonl``): the sentences in both
    files (of ``ids`` only, when given; None: all). No dump (either file missing): None. An
    unreadable one raises OSError, ValueError or KeyError."""
    npz, index = Path(align_dir) / f"{name}.npz", Path(align_dir) / f"{name}.jsonl"
    if not (npz.is_file() and index.is_file()):
        return None
    entries = {
        e["id"]: e
        for e in map(json.loads, index.read_text(encoding="utf-8").splitlines())
        if isinstance(e, dict)
    }
    with np.load(npz) as data:
        stored = {int(key) for key in data.files if key.isdigit()} & set(entries)
        wanted = sorted(stored if ids is None else stored & set(ids))
        return {i: (data[str(i)], entries[i]) for i in wanted}


def choose_attention(
    weights: np.ndarray,
    *,
    layer: int | str | None = None,
    head: int | str | None = None,
    default_layer: int = -1,
    default_head: int | None = None,
) -> np.ndarray:
    """(B, L, H, T, S) cross-attention of every decoder layer and head -> (B, T, S).

    ``layer``: an index (negative from the end) or ``mean`` (the average over layers), None:
    ``default_layer`` (the model's ``alignment_layer``). ``head``: an index or ``mean``, None:
    ``default_head`` (the model's ``alignment_head``; None there is the mean of heads). The head
    is taken in every layer averaged over with ``layer=mean``.
    """
    from ..errors import ConfigError

    weights = np.asarray(weights)
    n_layers, n_heads = weights.shape[1], weights.shape[2]
    layer = default_layer if layer is None else layer
    head = default_head if head is None else head
    for key, value, size, what in (
        ("layer", layer, n_layers, "decoder layers"),
        ("head", head, n_heads, "heads"),
    ):
        if value not in (None, "mean") and not -size <= int(value) < size:
            raise ConfigError(
                f"alignment.{key}={value} is out of range: the model has {size} {what} "
                f"(valid: {-size}..{size - 1} or mean)"
            )
    by_layer = weights.mean(axis=1) if layer == "mean" else weights[:, int(layer)]
    return by_layer.mean(axis=1) if head in (None, "mean") else by_layer[:, int(head)]


def target_rows(matrix: np.ndarray, n_target: int, *, shift: bool = False) -> np.ndarray:
    """The rows of a teacher-forced (n_target + 1, S) matrix that align the n_target target
    pieces: row t (the step that predicts piece t), or with ``shift`` (shift-att, Chen et al.
    2020) row t + 1, the step that reads piece t as its input (so the EOS row serves the last
    piece and the first row, read from BOS, serves none)."""
    if matrix.shape[0] != n_target + 1:
        raise ValueError(
            f"matrix has {matrix.shape[0]} rows, expected {n_target + 1} ({n_target} target "
            "pieces and EOS)"
        )
    return matrix[1:] if shift else matrix[:-1]


def teacher_forced_matrices(
    model,
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]],
    *,
    device,
    amp_dtype=None,
    batch_size: int = 64,
    layer: int | str | None = None,
    head: int | str | None = None,
) -> list[np.ndarray]:
    """Attention while the model reads each reference (forced decoding), one matrix per pair.

    ``src_ids`` end with EOS; ``tgt_ids`` have no BOS/EOS. Each matrix is
    (len(tgt) + 1, len(src)): a row per target piece and one for EOS. ``layer`` / ``head``
    (:func:`choose_attention`) pick among a Transformer's cross-attention layers and heads;
    both None: the model's own alignment (what decoding returns).
    """
    import torch

    from ..data.batching import collate
    from ..errors import ConfigError
    from ..runtime import autocast

    if not model.has_alignment:
        raise ValueError(
            "this model has no attention (attention=none): there is no alignment to score"
        )
    chosen = layer is not None or head is not None
    if chosen and not hasattr(model, "cross_attention_weights"):
        raise ConfigError(
            "alignment.layer and alignment.head choose among a Transformer's cross-attention "
            f"layers and heads; this run's model ({type(model).__name__}) has one attention: "
            "leave them unset"
        )
    matrices: list[np.ndarray] = []
    model.eval()
    with torch.inference_mode(), autocast(torch.device(device), amp_dtype):
        for start in range(0, len(src_ids), batch_size):
            idx = list(range(start, min(start + batch_size, len(src_ids))))
            batch = collate([src_ids[i] for i in idx], [tgt_ids[i] for i in idx], idx).to(device)
            if chosen:
                every = model.cross_attention_weights(
                    batch.src, batch.src_mask, batch.tgt_in, batch.tgt_mask
                )  # (batch, L, H, tgt_len, src_len)
                attn = choose_attention(
                    every.float().cpu().numpy(),
                    layer=layer,
                    head=head,
                    default_layer=model.alignment_layer,
                    default_head=model.alignment_head,
                )
            else:
                attn = model(
                    batch.src, batch.src_mask, batch.tgt_in, batch.tgt_mask, need_attn=True
                ).attn_weights
                attn = attn.float().cpu().numpy()  # (batch, tgt_len, src_len)
            for row, i in enumerate(idx):
                matrices.append(attn[row, : len(tgt_ids[i]) + 1, : len(src_ids[i])])
    return matrices


def word_links(
    matrix: np.ndarray,
    src_groups: Sequence[Sequence[int]],
    tgt_groups: Sequence[Sequence[int]],
    *,
    shift: bool = False,
    hard: str = "argmax",
    threshold: float = 0.3,
) -> set[tuple[int, int]]:
    """Word links (src_word, tgt_word) of one teacher-forced matrix (:func:`target_rows`,
    :func:`words_matrix`, :func:`hard_alignment`); a word with no piece gets no link."""
    n_target = 1 + max((i for g in tgt_groups for i in g), default=-1)
    rows = target_rows(matrix, n_target, shift=shift)
    links = hard_alignment(
        words_matrix(rows, src_groups, tgt_groups), method=hard, threshold=threshold
    )
    return {(s, t) for s, t in links if len(src_groups[s]) and len(tgt_groups[t])}
