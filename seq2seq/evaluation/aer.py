"""AER against gold word alignments: every step from a gold file to the scores, in one module.

The steps: the gold sentence pairs and their links (read and checked before any decoding), a
model's word links of those pairs (its teacher-forced attention, optionally symmetrised with a
run of the other direction), the corpus AER with precision and recall, and the line saying
which extraction options produced them. ``seq2seq-evaluate gold_alignments=``, the end of
training (``data.test_alignments``) and ``seq2seq-align-baseline`` all go through here; the
attention matrices and their word links come from :mod:`seq2seq.evaluation.alignments`.

Words. Links index the *words* of each pair: the whitespace tokens of each side, i.e. a gold
set's own pre-tokenized tokens. The model reads those tokens joined by single spaces; the
word -> subword map that aggregates its (target pieces x source pieces) attention to words is
built by encoding token by token (:func:`seq2seq.evaluation.alignments.encode_words`), so the
word groups are exactly the gold's tokens even where sentencepiece's ``▁`` marks would say
otherwise (a piece such as ``<unk>`` without ``▁``, a token with no piece at all).

Pairs. ``gold_text=F``: one ``source ||| target`` line per pair; else ``src_file=`` and
``ref_file=`` (one sentence per line each).

Links (``alignment.gold_format``):

- ``pharaoh``: one line per pair, space-separated links: ``i-j`` sure; ``ipj``, ``i?j`` or
  ``i-j-P`` possible; ``i-j-S`` sure.
- ``wpt``: the WPT 2003/2005 shared tasks' files (Mihalcea and Pedersen 2003): one link per
  line, ``sentence i j [S|P] [confidence]`` (S sure, the default; P possible; the confidence is
  ignored); the sentence number counts the pairs in order. A pair without a line has no link.

``alignment.gold_index_base`` (0 or 1) is where word indices, and WPT's sentence numbers,
start. In a 1-based WPT file a word index 0 is NULL: that link says the other word is
unaligned and is dropped (AER has no NULL links); a 1-based Pharaoh link with a 0 is refused.

Direction. ``i`` indexes the model's source and ``j`` its target. A gold set written the other
way round (its first side is the model's target, e.g. the en-cs gold for a cs->en model) takes
``alignment.gold_reversed=true``: the links are swapped and, in a ``gold_text=`` file, so are
the two sides (with ``src_file=`` / ``ref_file=`` the sides are already named).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import option_value
from ..data.corpus import DataError, read_lines
from .alignments import encode_words, symmetrize, teacher_forced_matrices, word_links

Links = set[tuple[int, int]]

# the scores an AER adds to a run's metrics (``test_`` + each at the end of training)
AER_KEYS = ("aer", "align_precision", "align_recall")


@dataclass
class GoldSet:
    """Sentence pairs as word lists, oriented as the model reads them (source -> target),
    and their gold links (src_word, tgt_word), 0-based; sure links are possible too."""

    src_words: list[list[str]]
    tgt_words: list[list[str]]
    sure: list[Links]
    possible: list[Links]
    path: str  # the links' file, for messages

    def __len__(self) -> int:
        return len(self.src_words)

    @property
    def sources(self) -> list[str]:
        return [" ".join(words) for words in self.src_words]

    @property
    def references(self) -> list[str]:
        return [" ".join(words) for words in self.tgt_words]


def read_gold_text(path: str | Path) -> tuple[list[list[str]], list[list[str]]]:
    """The two sides' tokens of a ``left ||| right`` file, as written (no reversal); DataError
    naming the file and line of a line without exactly one ``|||`` or with an empty side."""
    left, right = [], []
    for line_no, line in enumerate(read_lines(path), start=1):
        parts = line.split("|||")
        if len(parts) != 2 or not parts[0].split() or not parts[1].split():
            raise DataError(
                f"{path} line {line_no}: expected 'source ||| target' (one '|||' between two "
                f"non-empty sides), got {line[:80]!r}"
            )
        left.append(parts[0].split())
        right.append(parts[1].split())
    return left, right


def gold_text_pairs(
    path: str | Path, alignment: Mapping | None = None
) -> tuple[list[list[str]], list[list[str]]]:
    """The (src_words, tgt_words) of a ``gold_text=`` file, oriented as the model reads them:
    with ``alignment.gold_reversed=true`` the file is ``target ||| source``."""
    left, right = read_gold_text(path)
    return (right, left) if (alignment or {}).get("gold_reversed") else (left, right)


_LINK = re.compile(r"^(\d+)([-?p])(\d+)(?:-([SP]))?$")


def parse_pharaoh(line: str) -> tuple[Links, Links]:
    """Gold links -> (sure, possible); sure links are possible too (Och and Ney 2003).

    Accepts ``i-j`` (sure), ``ipj``, ``i?j`` and ``i-j-P`` (possible), ``i-j-S`` (sure), as
    written (no index base applied: :meth:`_GoldFile.pharaoh_links` does that).
    """
    sure, possible = set(), set()
    for token in line.split():
        match = _LINK.match(token)
        if not match or (match.group(2) != "-" and match.group(4)):
            raise ValueError(f"bad alignment link {token!r}; expected i-j, i?j or i-j-P")
        link = (int(match.group(1)), int(match.group(3)))
        possible.add(link)
        if match.group(2) == "-" and match.group(4) != "P":
            sure.add(link)
    return sure, possible


_WPT_KIND = {"S": True, "P": False}
_NUMBER = re.compile(r"^\d+$")


@dataclass(frozen=True)
class _GoldFile:
    """A gold file as read against its pairs: ``where`` (the file, for messages), the pairs'
    words (source, target, as the model reads them) and how the file indexes them."""

    where: str
    src_words: Sequence[Sequence[str]]
    tgt_words: Sequence[Sequence[str]]
    index_base: int
    reversed_: bool

    def place(self, pair: int, i: int, j: int, *, line_no: int, link: str, fix: str):
        """The written link (i, j) of pair ``pair`` -> (src, tgt) 0-based; None for a NULL
        link (a 0 in a 1-based file). A DataError names the file, ``line_no`` and ``link``
        when the link lies outside the pair's words, saying both sides' word counts and the
        indexing, and how to ``fix`` it."""
        base, reversed_ = self.index_base, self.reversed_
        if base == 1 and (i == 0 or j == 0):
            return None
        n_src, n_tgt = len(self.src_words[pair]), len(self.tgt_words[pair])
        s, t = (j, i) if reversed_ else (i, j)
        s, t = s - base, t - base
        if 0 <= s < n_src and 0 <= t < n_tgt:
            return s, t
        first, second = ("reference", "source") if reversed_ else ("source", "reference")
        n1, n2 = (n_tgt, n_src) if reversed_ else (n_src, n_tgt)
        order = "target-source" if reversed_ else "source-target"
        indexing = f"{base}-based {order} indices"
        indexing += ", alignment.gold_reversed=true" if reversed_ else ""
        raise DataError(
            f"{self.where} line {line_no}: {link} is out of range: the {first} has {n1} words "
            f"and the {second} {n2} ({indexing}); fix {fix}"
        )

    def pharaoh_links(self, lines: Sequence[str]) -> tuple[list[Links], list[Links]]:
        """Pharaoh lines, one per pair -> (sure, possible) per pair, 0-based (src, tgt);
        DataError naming the file and the line of a malformed link or of one outside the
        pair's words."""
        sure_all, possible_all = [], []
        for pair, gold in enumerate(lines):
            line_no = pair + 1
            try:
                written_sure, written = parse_pharaoh(gold)
            except ValueError as err:
                raise DataError(f"{self.where} line {line_no}: {err}") from None
            sure, possible = set(), set()
            for i, j in sorted(written):
                if self.index_base == 1 and (i == 0 or j == 0):
                    raise DataError(
                        f"{self.where} line {line_no}: link {i}-{j} has index 0, but the indices "
                        "are 1-based (alignment.gold_index_base=1); use "
                        "alignment.gold_index_base=0 for a 0-based file"
                    )
                link = self.place(
                    pair,
                    i,
                    j,
                    line_no=line_no,
                    link=f"link {i}-{j}",
                    fix="the link or the line order",
                )
                possible.add(link)
                if (i, j) in written_sure:
                    sure.add(link)
            sure_all.append(sure)
            possible_all.append(possible)
        return sure_all, possible_all

    def wpt_links(self, lines: Sequence[str], *, extra_ok: bool) -> tuple[list[Links], list[Links]]:
        """WPT lines ``sentence i j [S|P] [confidence]`` -> (sure, possible) per pair; blank
        lines are skipped. DataError naming the file and the line of a malformed line, a
        sentence number outside the pairs (unless ``extra_ok``: a ``limit`` keeps the first
        pairs) or a link outside its pair's words."""
        n_pairs, base = len(self.src_words), self.index_base
        sure: list[Links] = [set() for _ in range(n_pairs)]
        possible: list[Links] = [set() for _ in range(n_pairs)]
        for line_no, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields:
                continue
            ok = 3 <= len(fields) <= 5 and all(_NUMBER.match(f) for f in fields[:3])
            ok = ok and (len(fields) < 4 or fields[3].upper() in _WPT_KIND)
            if ok and len(fields) == 5:
                try:
                    float(fields[4])
                except ValueError:
                    ok = False
            if not ok:
                raise DataError(
                    f"{self.where} line {line_no}: bad WPT alignment line {line.strip()[:60]!r}; "
                    "expected 'sentence i j [S|P] [confidence]'"
                )
            number, i, j = (int(f) for f in fields[:3])
            pair = number - base
            if not 0 <= pair < n_pairs:
                if extra_ok and pair >= n_pairs:
                    continue
                raise DataError(
                    f"{self.where} line {line_no}: sentence {number} is out of range: there are "
                    f"{n_pairs} sentence pairs (numbered from {base}, "
                    f"alignment.gold_index_base={base})"
                )
            link = self.place(
                pair,
                i,
                j,
                line_no=line_no,
                link=f"link {i} {j} of sentence {number}",
                fix="the link or the sentence number",
            )
            if link is None:
                continue
            possible[pair].add(link)
            if len(fields) < 4 or _WPT_KIND[fields[3].upper()]:
                sure[pair].add(link)
        return sure, possible


def load_gold(
    path: str | Path,
    src_words: Sequence[Sequence[str]],
    tgt_words: Sequence[Sequence[str]],
    alignment: Mapping | None = None,
    *,
    extra_ok: bool = False,
    pairs_from: str | None = None,
) -> GoldSet:
    """Read the gold links of ``path`` for the pairs (source-target word lists, oriented as
    the model reads them) with ``alignment``'s gold_format, gold_index_base and gold_reversed.
    ``extra_ok``: a Pharaoh file may have more lines, a WPT file later sentences, than pairs
    (the pairs are a file's first ones); ``pairs_from`` names the pairs' file in the message
    when the counts differ."""
    alignment = alignment or {}
    fmt = option_value(alignment.get("gold_format", "pharaoh"))
    base = int(alignment.get("gold_index_base", 0))
    reversed_ = bool(alignment.get("gold_reversed", False))
    lines = read_lines(path)
    src_words = [list(w) for w in src_words]
    tgt_words = [list(w) for w in tgt_words]
    gold_file = _GoldFile(str(path), src_words, tgt_words, base, reversed_)
    if fmt == "pharaoh":
        if len(lines) < len(src_words) or (len(lines) > len(src_words) and not extra_ok):
            raise DataError(
                f"line counts differ: {path} has {len(lines)} lines, "
                f"{pairs_from or 'the sentence pairs'} has {len(src_words)}"
            )
        sure, possible = gold_file.pharaoh_links(lines[: len(src_words)])
    elif fmt == "wpt":
        sure, possible = gold_file.wpt_links(lines, extra_ok=extra_ok)
    else:
        raise DataError(f"unknown alignment.gold_format {fmt!r}; valid: pharaoh, wpt")
    return GoldSet(src_words, tgt_words, sure, possible, str(path))


# --------------------------------------------------------------------------- gold of a config


def gold_pairs(cfg) -> tuple[list[str], list[str]] | None:
    """The (sources, references) of seq2seq-evaluate's ``gold_text=F`` (``source ||| target``
    lines; with ``alignment.gold_reversed=true`` the file is ``target ||| source``), None
    without it."""
    if not cfg.get("gold_text"):
        return None
    if cfg.get("src_file") or cfg.get("ref_file"):
        raise DataError(
            "gold_text= holds both sides of the gold pairs: give it or src_file=/ref_file=, "
            "not both"
        )
    if not cfg.get("gold_alignments"):
        raise DataError("gold_text= needs gold_alignments=: the links of its pairs")
    src, tgt = gold_text_pairs(cfg.gold_text, cfg.alignment)
    return [" ".join(w) for w in src], [" ".join(w) for w in tgt]


def read_gold(sources, references, cfg) -> GoldSet:
    """seq2seq-evaluate's ``cfg.gold_alignments`` (in the format ``alignment.gold_format``
    etc.), checked against the pairs before any decoding: one line per pair (Pharaoh), every
    link well formed and within its pair's words."""
    if not (cfg.src_file or cfg.get("gold_text")) or references is None:
        raise DataError(
            "gold_alignments needs the sentence pairs its links describe: gold_text= (one "
            "'source ||| target' file) or src_file= and ref_file="
        )
    return load_gold(
        cfg.gold_alignments,
        [s.split() for s in sources],
        [r.split() for r in references],
        cfg.alignment,
        extra_ok=cfg.limit is not None,
        pairs_from=cfg.get("gold_text") or cfg.src_file,
    )


def gold_set(cfg) -> GoldSet:
    """The gold pairs and links of seq2seq-align-baseline's config (``gold_text=`` or
    ``src_file=`` and ``ref_file=``, ``limit``), oriented data.src -> data.tgt."""
    if cfg.get("gold_text"):
        src_words, tgt_words = gold_text_pairs(cfg.gold_text, cfg.alignment)
        pairs_from = cfg.gold_text
    else:
        sources, references = read_lines(cfg.src_file), read_lines(cfg.ref_file)
        if len(sources) != len(references):
            raise DataError(
                f"line counts differ: {cfg.src_file} has {len(sources)} lines, "
                f"{cfg.ref_file} has {len(references)}"
            )
        src_words = [s.split() for s in sources]
        tgt_words = [r.split() for r in references]
        pairs_from = cfg.src_file
    if cfg.get("limit") is not None:
        src_words, tgt_words = src_words[: cfg.limit], tgt_words[: cfg.limit]
    return load_gold(
        cfg.gold_alignments,
        src_words,
        tgt_words,
        cfg.alignment,
        extra_ok=cfg.get("limit") is not None,
        pairs_from=pairs_from,
    )


def split_gold(
    path: str | Path, sources: Sequence[str], references: Sequence[str], alignment: Mapping
) -> GoldSet:
    """The gold links of a run's test split (``data.test_alignments``): the file may describe
    more pairs than the split holds (``data.eval_limit`` keeps the first ones), not fewer."""
    return load_gold(
        path,
        [s.split() for s in sources],
        [t.split() for t in references],
        alignment,
        extra_ok=True,
        pairs_from="the test split",
    )


# --------------------------------------------------------------------------- our links


def run_word_links(
    model,
    tokenizer,
    src_words: Sequence[Sequence[str]],
    tgt_words: Sequence[Sequence[str]],
    *,
    device,
    amp_dtype=None,
    alignment: Mapping | None = None,
) -> list[Links]:
    """A model's word links (src_word, tgt_word) of each pair, read from its attention while it
    is forced to read the target words, with ``alignment``'s extraction options (layer, head,
    shift, hard, threshold; not symmetrize: see :func:`gold_word_links`)."""
    from ..data.vocab import EOS_ID
    from ..validation import index_or_mean

    alignment = alignment or {}
    src = [encode_words(tokenizer.src, words) for words in src_words]
    tgt = [encode_words(tokenizer.tgt, words) for words in tgt_words]
    matrices = teacher_forced_matrices(
        model,
        [ids + [EOS_ID] for ids, _ in src],
        [ids for ids, _ in tgt],
        device=device,
        amp_dtype=amp_dtype,
        layer=index_or_mean(alignment.get("layer")),
        head=index_or_mean(alignment.get("head")),
    )
    return [
        word_links(
            matrix,
            src_groups,
            tgt_groups,
            shift=bool(alignment.get("shift", False)),
            hard=alignment.get("hard", "argmax"),
            threshold=alignment.get("threshold", 0.3),
        )
        for matrix, (_, src_groups), (_, tgt_groups) in zip(matrices, src, tgt, strict=True)
    ]


def gold_word_links(
    model,
    tokenizer,
    gold: GoldSet,
    *,
    device,
    amp_dtype=None,
    alignment: Mapping | None = None,
    reverse=None,
) -> list[Links]:
    """This model's word links of the gold pairs, symmetrised (``alignment.symmetrize``) with
    those of ``reverse`` (a :class:`~seq2seq.evaluation.run.LoadedRun`-like object with
    ``model`` and ``tokenizer``, trained target -> source: it reads the gold's target words as
    its source, and its (its src, its tgt) links are turned back into (our src, our tgt))."""
    alignment = alignment or {}
    links = run_word_links(
        model,
        tokenizer,
        gold.src_words,
        gold.tgt_words,
        device=device,
        amp_dtype=amp_dtype,
        alignment=alignment,
    )
    method = alignment.get("symmetrize")
    if method in (None, "none"):
        return links
    if reverse is None:
        raise DataError(
            f"alignment.symmetrize={method} needs alignment.reverse_run_dir=DIR: a run trained "
            "in the other direction"
        )
    backward = run_word_links(
        reverse.model,
        reverse.tokenizer,
        gold.tgt_words,
        gold.src_words,
        device=device,
        amp_dtype=amp_dtype,
        alignment=alignment,
    )
    return [
        symmetrize(f, {(s, t) for t, s in b}, method) for f, b in zip(links, backward, strict=True)
    ]


# --------------------------------------------------------------------------- what is refused first


def check_reverse_run(run_config, reverse_config, reverse_dir: str | Path) -> None:
    """DataError unless the reverse run translates the other way round (its data.src is this
    run's data.tgt and the other way round)."""
    ours = (str(run_config.data.src), str(run_config.data.tgt))
    theirs = (str(reverse_config.data.src), str(reverse_config.data.tgt))
    if theirs != ours[::-1]:
        raise DataError(
            f"alignment.reverse_run_dir={reverse_dir} translates {theirs[0]}->{theirs[1]}, but "
            f"symmetrisation needs a run trained {ours[1]}->{ours[0]} (this run: "
            f"{ours[0]}->{ours[1]})"
        )


def check_extraction(model, alignment: Mapping | None, *, whose: str = "this run's") -> None:
    """ConfigError before any work when ``alignment.layer`` / ``alignment.head`` do not fit the
    model: set for a model with one attention (an RNN), or an index past its decoder layers or
    heads; ValueError for a model without attention."""
    from ..errors import ConfigError
    from ..validation import index_or_mean

    alignment = alignment or {}
    if not model.has_alignment:
        raise ValueError(
            f"{whose} model has no attention (attention=none): there is no alignment to score"
        )
    layer, head = index_or_mean(alignment.get("layer")), index_or_mean(alignment.get("head"))
    if layer is None and head is None:
        return
    if not hasattr(model, "cross_attention_weights"):
        raise ConfigError(
            "alignment.layer and alignment.head choose among a Transformer's cross-attention "
            f"layers and heads; {whose} model ({type(model).__name__}) has one attention: "
            "leave them unset"
        )
    for key, value, size, what in (
        ("layer", layer, len(model.decoder), "decoder layers"),
        ("head", head, model.heads, "heads"),
    ):
        if isinstance(value, int) and not -size <= value < size:
            raise ConfigError(
                f"alignment.{key}={value} is out of range: {whose} model has {size} {what} "
                f"(valid: {-size}..{size - 1} or mean)"
            )


def load_reverse_run(
    alignment: Mapping | None, run_config, *, device, precision="fp32", checkpoint="best"
):
    """The run of ``alignment.reverse_run_dir`` (None unless symmetrising), checked to translate
    the other way round from ``run_config``'s."""
    from ..decoding.precision import decoding_model
    from .run import load_run

    alignment = alignment or {}
    if alignment.get("symmetrize") in (None, "none"):
        return None
    path = alignment.get("reverse_run_dir")
    if not path:
        raise DataError(
            f"alignment.symmetrize={alignment.get('symmetrize')} needs "
            "alignment.reverse_run_dir=DIR: a run trained in the other direction"
        )
    reverse = load_run(path, checkpoint=checkpoint, device=device)
    check_reverse_run(run_config, reverse.config, path)
    check_extraction(reverse.model, alignment, whose=f"the reverse run's ({path})")
    reverse.model = decoding_model(reverse.model, precision)
    return reverse


def prepare_aer(
    model, alignment: Mapping | None, run_config, *, device, precision="fp32", checkpoint="best"
):
    """What can be refused before any decoding, in order: ``alignment``'s extraction options
    for ``model`` (:func:`check_extraction`), then the reverse run (:func:`load_reverse_run`),
    which it returns (None unless symmetrising)."""
    check_extraction(model, alignment)
    return load_reverse_run(
        alignment, run_config, device=device, precision=precision, checkpoint=checkpoint
    )


# --------------------------------------------------------------------------- the scores


def alignment_error_rate(
    predicted: Sequence[Links], sure: Sequence[Links], possible: Sequence[Links]
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


def score_links(
    predicted: Sequence[Links], sure: Sequence[Links], possible: Sequence[Links]
) -> dict[str, float]:
    """AER, precision and recall of any aligner's links (ours, eflomal's) against gold links,
    rounded to 4 places, with the number of predicted links: every table and run's metrics
    scores through this one call of :func:`alignment_error_rate`."""
    scores = alignment_error_rate(predicted, sure, possible)
    return {
        "aer": round(scores["aer"], 4),
        "align_precision": round(scores["precision"], 4),
        "align_recall": round(scores["recall"], 4),
        "links": sum(len(a) for a in predicted),
    }


def score_gold(predicted: Sequence[Links], gold: GoldSet) -> dict:
    """AER, precision, recall (and the number of links) of any aligner's links of the gold
    pairs: the one scoring call for our runs and for eflomal."""
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predicted alignments but {len(gold)} gold ones")
    return score_links(predicted, gold.sure, gold.possible)


def alignment_setup(alignment: Mapping | None) -> dict:
    """The extraction options an AER was computed with (for the metrics and tables)."""
    alignment = alignment or {}
    return {
        "layer": alignment.get("layer"),
        "head": alignment.get("head"),
        "shift": bool(alignment.get("shift", False)),
        "hard": alignment.get("hard", "argmax"),
        "threshold": alignment.get("threshold", 0.3),
        "symmetrize": alignment.get("symmetrize") or "none",
        "reverse_run_dir": alignment.get("reverse_run_dir"),
    }


def describe_setup(setup: Mapping) -> str:
    """``layer model's, head model's, argmax, no shift, symmetrize none`` for one line."""
    layer = "model's" if setup.get("layer") is None else setup["layer"]
    head = "model's" if setup.get("head") is None else setup["head"]
    hard = setup.get("hard", "argmax")
    if hard == "threshold":
        hard = f"threshold {setup.get('threshold')}"
    return (
        f"layer {layer}, head {head}, {'shift-att' if setup.get('shift') else 'no shift'}, "
        f"{hard}, symmetrize {setup.get('symmetrize') or 'none'}"
    )
