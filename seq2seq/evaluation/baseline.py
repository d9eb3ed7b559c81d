"""An IBM-model anchor for attention-as-alignment: eflomal on the same data and the same gold.

eflomal (Östling and Tiedemann 2016; ``pip install "seq2seq[align]"``) is trained on the
training split of the runs' data config plus the gold pairs (an unsupervised aligner aligns the
sentences it learns from; the gold pairs' links are read from the joint run), in both
directions, and the two are combined by :func:`~seq2seq.evaluation.alignments.symmetrize`
(``eflomal.symmetrize``, default grow-diag-final). Its links and every run's attention links are
scored by the one function :func:`~seq2seq.evaluation.aer.score_gold` against the same parsed
gold links.

Words. The gold pairs are their own tokens; the training corpus, raw text, is tokenized with
sacreBLEU's 13a tokenizer (``eflomal.tokenize=13a``: punctuation split off, close to the gold's
pre-tokenized words) or split on whitespace (``none``). Case: eflomal's Python API lowercases
every word itself (``eflomal.Aligner.prepare_files`` -> ``read_text(..., lowercase=True)``), so
the text is passed as it is and the baseline is a lowercased one whatever the corpus's case.
eflomal's Gibbs sampler takes no seed through that API: two runs can differ slightly.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..config import option_value, run_label
from ..errors import Seq2SeqError
from .aer import (
    GoldSet,
    Links,
    alignment_setup,
    describe_setup,
    gold_set,
    gold_word_links,
    prepare_aer,
    score_gold,
)
from .alignments import symmetrize

log = logging.getLogger("seq2seq.align_baseline")

EXTRA = 'pip install "seq2seq[align]"'


class MissingExtraError(Seq2SeqError):
    """An optional dependency is not installed; the message names the extra."""


def import_eflomal():
    """The ``eflomal`` module, or MissingExtraError naming the extra that installs it."""
    try:
        import eflomal
    except ImportError:
        raise MissingExtraError(
            f"eflomal is not installed: {EXTRA} (the optional extra of seq2seq-align-baseline)"
        ) from None
    return eflomal


def corpus_words(sentences: Sequence[str], tokenize: str = "13a") -> list[list[str]]:
    """Raw sentences -> words: sacreBLEU's 13a tokenization, or whitespace (``none``)."""
    if tokenize == "none":
        return [s.split() for s in sentences]
    if tokenize != "13a":
        raise ValueError(f"unknown eflomal.tokenize {tokenize!r}; valid: 13a, none")
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    tok = Tokenizer13a()
    return [tok(s).split() for s in sentences]


def _read_links(path: str, n: int) -> list[Links]:
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    links = []
    for k in range(n):
        line = lines[k] if k < len(lines) else ""
        links.append({tuple(int(x) for x in token.split("-")) for token in line.split()})
    return links


def eflomal_align(
    src_words: Sequence[Sequence[str]],
    tgt_words: Sequence[Sequence[str]],
    *,
    model: int = 3,
    n_samplers: int = 3,
    rel_iterations: float = 1.0,
    null_prior: float = 0.2,
) -> tuple[list[Links], list[Links]]:
    """eflomal's forward and reverse links of each pair, both as (src, tgt) word indices."""
    eflomal = import_eflomal()
    if len(src_words) != len(tgt_words):
        raise ValueError(f"{len(src_words)} source sentences but {len(tgt_words)} target ones")
    aligner = eflomal.Aligner(
        model=model, n_samplers=n_samplers, rel_iterations=rel_iterations, null_prior=null_prior
    )
    with tempfile.TemporaryDirectory(prefix="seq2seq-eflomal-") as tmp:
        fwd, rev = os.path.join(tmp, "fwd"), os.path.join(tmp, "rev")
        aligner.align(
            [" ".join(w) for w in src_words],
            [" ".join(w) for w in tgt_words],
            links_filename_fwd=fwd,
            links_filename_rev=rev,
            quiet=True,
        )
        return _read_links(fwd, len(src_words)), _read_links(rev, len(src_words))


def eflomal_gold_links(
    train_src: Sequence[Sequence[str]],
    train_tgt: Sequence[Sequence[str]],
    gold: GoldSet,
    options: Mapping | None = None,
) -> tuple[list[Links], int]:
    """eflomal trained on the training pairs (those with two non-empty sides) plus the gold
    pairs; the gold pairs' links, symmetrised (``options.symmetrize``), and the number of
    training pairs used."""
    options = options or {}
    pairs = [(s, t) for s, t in zip(train_src, train_tgt, strict=True) if s and t]
    src = [s for s, _ in pairs] + list(gold.src_words)
    tgt = [t for _, t in pairs] + list(gold.tgt_words)
    forward, reverse = eflomal_align(
        src,
        tgt,
        model=int(options.get("model", 3)),
        n_samplers=int(options.get("n_samplers", 3)),
        rel_iterations=float(options.get("rel_iterations", 1.0)),
        null_prior=float(options.get("null_prior", 0.2)),
    )
    n = len(gold)
    method = options.get("symmetrize", "grow-diag-final")
    links = [
        symmetrize(f, r, method)
        for f, r in zip(forward[len(pairs) :], reverse[len(pairs) :], strict=True)
    ]
    assert len(links) == n
    return links, len(pairs)


# --------------------------------------------------------------------------- the table


def _check_run_direction(run, data, run_dir: str) -> None:
    from ..data.corpus import DataError

    ours = (str(data.src), str(data.tgt))
    theirs = (str(run.config.data.src), str(run.config.data.tgt))
    if theirs != ours:
        raise DataError(
            f"run {run_dir} translates {theirs[0]}->{theirs[1]}, but the table is "
            f"{ours[0]}->{ours[1]} (data.src={ours[0]} data.tgt={ours[1]}): score it with "
            f"data.src={theirs[0]} data.tgt={theirs[1]}, or give it as "
            f"alignment.reverse_run_dir= of a {ours[0]}->{ours[1]} run"
        )
    if str(run.config.data.name) != str(data.name):
        log.warning(
            "run %s was trained on %s, eflomal trains on %s: not the same training corpus",
            run_dir,
            run.config.data.name,
            data.name,
        )


def align_baseline(cfg) -> dict:
    """eflomal's and each run's AER against the gold links; returns {gold, rows}.

    Everything that can be refused (gold files, runs, their direction and the extraction
    options, eflomal's presence) is checked before eflomal trains or a model runs."""
    from ..data.pipeline import load_split_texts
    from ..runtime import pick_device
    from ..validation import check_align_baseline_config
    from .run import load_run

    check_align_baseline_config(cfg)
    import_eflomal()
    gold = gold_set(cfg)
    device = pick_device(cfg.device, key="device")
    runs = []
    for run_dir in cfg.run_dirs:
        run = load_run(run_dir, checkpoint=cfg.checkpoint, device=device)
        _check_run_direction(run, cfg.data, run_dir)
        reverse = prepare_aer(
            run.model, cfg.alignment, run.config, device=device, checkpoint=cfg.checkpoint
        )
        runs.append((run_dir, run, reverse))
    options = dict(cfg.eflomal)
    train_src, train_tgt = load_split_texts(cfg.data, "train")
    tokenize = options.get("tokenize", "13a")
    links, n_train = eflomal_gold_links(
        corpus_words(train_src, tokenize), corpus_words(train_tgt, tokenize), gold, options
    )
    rows = [
        {
            "aligner": "eflomal",
            "setup": (
                f"model {options.get('model', 3)}, {options.get('symmetrize')}, trained on "
                f"{cfg.data.name} {cfg.data.src}-{cfg.data.tgt} train ({n_train} pairs, "
                f"tokenize {tokenize}, lowercased) + the {len(gold)} gold pairs"
            ),
            **score_gold(links, gold),
        }
    ]
    setup = alignment_setup(cfg.alignment)
    for run_dir, run, reverse in runs:
        run_links = gold_word_links(
            run.model,
            run.tokenizer,
            gold,
            device=device,
            alignment=cfg.alignment,
            reverse=reverse,
        )
        label = run_label(run.config.model.name, run.config.attention.name, sep="/")
        rows.append(
            {
                "aligner": f"{run_dir} ({label})",
                "setup": describe_setup(setup),
                **score_gold(run_links, gold),
            }
        )
    n_sure = sum(len(s) for s in gold.sure)
    n_possible = sum(len(p) for p in gold.possible)
    return {
        "gold": {
            "links": str(cfg.gold_alignments),
            "pairs_file": str(cfg.get("gold_text") or cfg.src_file),
            "pairs": len(gold),
            "sure": n_sure,
            "possible": n_possible,
            "direction": f"{cfg.data.src}->{cfg.data.tgt}",
            "format": option_value(cfg.alignment.gold_format),
            "index_base": int(cfg.alignment.gold_index_base),
            "reversed": bool(cfg.alignment.gold_reversed),
        },
        "rows": rows,
    }


def format_table(result: Mapping) -> str:
    """A Markdown table of :func:`align_baseline`'s rows under one line saying what the gold is."""
    g = result["gold"]
    lines = [
        f"gold: {g['links']} ({g['pairs']} pairs of {g['pairs_file']}, {g['direction']}; "
        f"{g['sure']} sure and {g['possible']} possible links, sure included)",
        "",
        "| aligner | setup | AER | precision | recall | links |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['aligner']} | {row['setup']} | {row['aer']:.4f} | "
            f"{row['align_precision']:.4f} | {row['align_recall']:.4f} | {row['links']} |"
        )
    return "\n".join(lines)


def write_json(result: Mapping, path: str | Path) -> None:
    import json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
