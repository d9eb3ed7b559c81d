"""Gold alignments on real (pre-tokenized) data: every gold format reads to the same links,
bad links fail with their file and line, pre-tokenized words map exactly onto subwords, and
the extraction choices (shift-att, symmetrisation, Transformer layer/head) on hand-made
matrices and a tiny Transformer's weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seq2seq.config import default_data_dir
from seq2seq.data.corpus import DataError
from seq2seq.errors import ConfigError
from seq2seq.evaluation.aer import check_extraction, load_gold, parse_pharaoh, read_gold_text
from seq2seq.evaluation.alignments import (
    choose_attention,
    encode_words,
    symmetrize,
    target_rows,
    teacher_forced_matrices,
    word_groups,
    word_links,
    words_matrix,
)
from seq2seq.validation import check_alignment_options
from tests.conftest import tiny_transformer

# --------------------------------------------------------------------------- one gold set, every format

# three pairs, source (model's) -> target; 0-based (src, tgt) links
SRC = ["the firms were ready .", "`` to think about it", "it was late"]
TGT = ["firmy byly připraveny .", '" myslet na to', "bylo pozdě"]
SURE = [{(1, 0), (2, 1), (3, 2), (4, 3)}, {(0, 0), (2, 1), (4, 3)}, {(0, 0), (2, 1)}]
POSSIBLE_ONLY = [{(0, 0)}, {(1, 1), (3, 2)}, {(1, 0)}]
POSSIBLE = [s | p for s, p in zip(SURE, POSSIBLE_ONLY, strict=True)]


def pharaoh(fmt_sure, fmt_possible, *, base=0, reverse=False) -> str:
    lines = []
    for sure, only in zip(SURE, POSSIBLE_ONLY, strict=True):
        tokens = []
        for links, fmt in ((sure, fmt_sure), (only, fmt_possible)):
            for s, t in sorted(links):
                i, j = (t, s) if reverse else (s, t)
                tokens.append(fmt.format(i + base, j + base))
        lines.append(" ".join(tokens))
    return "\n".join(lines) + "\n"


def wpt(*, base=1, reverse=False, marks=True) -> str:
    lines = []
    for k, (sure, only) in enumerate(zip(SURE, POSSIBLE_ONLY, strict=True)):
        for links, kind in ((sure, "S"), (only, "P")):
            for s, t in sorted(links):
                i, j = (t, s) if reverse else (s, t)
                # P with a confidence (ignored); S written or left out (the default)
                mark = " P 0.8" if kind == "P" else (" S" if marks else "")
                lines.append(f"{k + base} {i + base} {j + base}{mark}")
        lines.append("")  # blank lines are skipped
    if base == 1:  # NULL links (index 0) say a word is unaligned: dropped
        lines += ["1 0 2 S", "3 1 0 P"]
    return "\n".join(lines) + "\n"


FORMATS = {
    "pharaoh ipj": ("pharaoh", 0, False, pharaoh("{}-{}", "{}p{}")),
    "pharaoh i?j": ("pharaoh", 0, False, pharaoh("{}-{}", "{}?{}")),
    "pharaoh i-j-S/i-j-P": ("pharaoh", 0, False, pharaoh("{}-{}-S", "{}-{}-P")),
    "pharaoh 1-based": ("pharaoh", 1, False, pharaoh("{}-{}", "{}p{}", base=1)),
    "pharaoh reversed": ("pharaoh", 0, True, pharaoh("{}-{}", "{}?{}", reverse=True)),
    "wpt 1-based": ("wpt", 1, False, wpt()),
    "wpt no S mark": ("wpt", 1, False, wpt(marks=False)),
    "wpt 0-based": ("wpt", 0, False, wpt(base=0)),
    "wpt reversed": ("wpt", 1, True, wpt(reverse=True)),
}


def write_pairs(tmp_path: Path, reverse: bool) -> tuple[Path, list[list[str]], list[list[str]]]:
    left, right = (TGT, SRC) if reverse else (SRC, TGT)
    text = tmp_path / "gold.src-tgt"
    text.write_text("".join(f"{a} ||| {b}\n" for a, b in zip(left, right, strict=True)))
    return text, [s.split() for s in SRC], [t.split() for t in TGT]


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_gold_format_reads_to_the_same_links(name, tmp_path):
    fmt, base, reverse, text = FORMATS[name]
    path = tmp_path / "gold.links"
    path.write_text(text, encoding="utf-8")
    pairs, src_words, tgt_words = write_pairs(tmp_path, reverse)
    left, right = read_gold_text(pairs)
    # gold_reversed=true: the file's first side is the model's target
    assert ((right, left) if reverse else (left, right)) == (src_words, tgt_words)
    alignment = {"gold_format": fmt, "gold_index_base": base, "gold_reversed": reverse}
    gold = load_gold(path, src_words, tgt_words, alignment)
    assert gold.sure == SURE
    assert gold.possible == POSSIBLE
    assert gold.sources == SRC and gold.references == TGT


def test_pharaoh_marks():
    sure, possible = parse_pharaoh("0-0 1p2 3?4 5-6-P 7-8-S")
    assert sure == {(0, 0), (7, 8)}
    assert possible == {(0, 0), (1, 2), (3, 4), (5, 6), (7, 8)}


# --------------------------------------------------------------------------- refused links, with file and line


def refused(tmp_path, text, alignment, src=SRC, tgt=TGT, **kwargs) -> str:
    path = tmp_path / "bad.links"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_gold(path, [s.split() for s in src], [t.split() for t in tgt], alignment, **kwargs)
    message = str(err.value)
    assert message.startswith(f"{path} line ") or message.startswith("line counts differ"), message
    return message.replace(str(path), "F")


@pytest.mark.parametrize(
    ("text", "alignment", "expected"),
    [
        (
            "0-0\n0-0 1-x\n0-0\n",
            {},
            "F line 2: bad alignment link '1-x'; expected i-j, i?j or i-j-P",
        ),
        ("0-0\n0-0\n3\n", {}, "F line 3: bad alignment link '3'; expected i-j, i?j or i-j-P"),
        (
            "0p0-S\n0-0\n0-0\n",
            {},
            "F line 1: bad alignment link '0p0-S'; expected i-j, i?j or i-j-P",
        ),
        (
            "0-0 5-1\n0-0\n0-0\n",
            {},
            "F line 1: link 5-1 is out of range: the source has 5 words and the reference 4 "
            "(0-based source-target indices); fix the link or the line order",
        ),
        (
            "1-1\n1-1\n3-3\n",
            {"gold_index_base": 1},
            "F line 3: link 3-3 is out of range: the source has 3 words and the reference 2 "
            "(1-based source-target indices); fix the link or the line order",
        ),
        (
            "1-1\n0-1\n1-1\n",
            {"gold_index_base": 1},
            "F line 2: link 0-1 has index 0, but the indices are 1-based "
            "(alignment.gold_index_base=1); use alignment.gold_index_base=0 for a 0-based file",
        ),
        (
            "0-0\n0-0\n2-0\n",  # reversed: 2-0 = target 2, source 0; the target has 2 words
            {"gold_reversed": True},
            "F line 3: link 2-0 is out of range: the reference has 2 words and the source 3 "
            "(0-based target-source indices, alignment.gold_reversed=true); fix the link or "
            "the line order",
        ),
        ("0-0\n0-0\n", {}, "line counts differ: F has 2 lines, the sentence pairs has 3"),
        (
            "1 1 1\n1 2\n",
            {"gold_format": "wpt", "gold_index_base": 1},
            "F line 2: bad WPT alignment line '1 2'; expected 'sentence i j [S|P] [confidence]'",
        ),
        (
            "1 1 1 X\n",
            {"gold_format": "wpt", "gold_index_base": 1},
            "F line 1: bad WPT alignment line '1 1 1 X'; expected 'sentence i j [S|P] [confidence]'",
        ),
        (
            "1 1 1 S high\n",
            {"gold_format": "wpt", "gold_index_base": 1},
            "F line 1: bad WPT alignment line '1 1 1 S high'; expected 'sentence i j [S|P] "
            "[confidence]'",
        ),
        (
            "1 1 1\n4 1 1\n",
            {"gold_format": "wpt", "gold_index_base": 1},
            "F line 2: sentence 4 is out of range: there are 3 sentence pairs (numbered from 1, "
            "alignment.gold_index_base=1)",
        ),
        (
            "1 1 1\n\n3 4 1 P\n",
            {"gold_format": "wpt", "gold_index_base": 1},
            "F line 3: link 4 1 of sentence 3 is out of range: the source has 3 words and the "
            "reference 2 (1-based source-target indices); fix the link or the sentence number",
        ),
    ],
    ids=[
        "1-x",
        "3",
        "p-with-S",
        "source-index",
        "1-based",
        "1-based-zero",
        "reversed",
        "count",
        "wpt-fields",
        "wpt-mark",
        "wpt-confidence",
        "wpt-sentence",
        "wpt-index",
    ],
)
def test_bad_links_fail_with_file_and_line(text, alignment, expected, tmp_path):
    assert refused(tmp_path, text, alignment) == expected


def test_bad_gold_text_lines_fail_with_file_and_line(tmp_path):
    for line, what in (("no separator", "no |||"), ("a ||| b ||| c", "two"), ("a |||  ", "empty")):
        path = tmp_path / "pairs.txt"
        path.write_text(f"x ||| y\n{line}\n", encoding="utf-8")
        with pytest.raises(DataError, match=rf"^{path} line 2: expected 'source \|\|\| target'"):
            read_gold_text(path)
        assert what


def test_a_limit_keeps_the_first_pairs(tmp_path):
    path = tmp_path / "g.wpt"
    path.write_text("1 1 1\n2 1 1\n3 1 1\n", encoding="utf-8")
    words = [s.split() for s in SRC[:2]], [t.split() for t in TGT[:2]]
    alignment = {"gold_format": "wpt", "gold_index_base": 1}
    assert load_gold(path, *words, alignment, extra_ok=True).sure == [{(0, 0)}, {(0, 0)}]
    with pytest.raises(DataError, match="line 3: sentence 3 is out of range"):
        load_gold(path, *words, alignment)


# --------------------------------------------------------------------------- words -> subwords


class FakeProcessor:
    """A sentencepiece stand-in: each word encodes to the pieces of ``table``."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.pieces = sorted({p for ps in table.values() for p in ps})

    def encode(self, words, out_type=int):
        return [[self.pieces.index(p) for p in self.table[w]] for w in words]

    def id_to_piece(self, i):
        return self.pieces[i]


def test_pretokenized_words_map_onto_their_own_pieces():
    """Gold tokens ``x € `` \u200b ok`` (5 words): the unknown ``€`` encodes to ``<unk>``,
    a piece without ``▁``; the quote to ``▁`` + two backticks; the zero-width space, which
    sentencepiece normalises away, to no piece at all. The ``▁`` marks alone see 3 words (the
    unknown merged into ``x``, the empty word lost, every later word shifted); encoding token by
    token keeps the gold's 5 words."""
    src_words = ["x", "€", "``", "\u200b", "ok"]
    proc = FakeProcessor(
        {"x": ["▁x"], "€": ["<unk>"], "``": ["▁", "`", "`"], "\u200b": [], "ok": ["▁o", "k"]}
    )
    ids, groups = encode_words(proc, src_words)
    pieces = [proc.id_to_piece(i) for i in ids]
    assert pieces == ["▁x", "<unk>", "▁", "`", "`", "▁o", "k"]
    assert groups == [[0], [1], [2, 3, 4], [], [5, 6]]
    # what the ▁ marks say: 3 words, the unknown € merged into x, the empty word lost
    assert word_groups(pieces) == [[0, 1], [2, 3, 4], [5, 6]]

    tgt_words = ["a", "bc"]
    tgt = FakeProcessor({"a": ["▁a"], "bc": ["▁b", "c"]})
    _, tgt_groups = encode_words(tgt, tgt_words)
    assert tgt_groups == [[0], [1, 2]]
    # rows: a, b, c, EOS; columns: ▁x <unk> ▁ ` ` ▁o k EOS
    matrix = np.array(
        [
            [0.1, 0.5, 0.0, 0.1, 0.1, 0.0, 0.1, 0.1],  # a
            [0.0, 0.0, 0.2, 0.2, 0.2, 0.2, 0.1, 0.1],  # b
            [0.6, 0.0, 0.0, 0.0, 0.0, 0.2, 0.2, 0.0],  # c
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],  # EOS
        ]
    )
    words = words_matrix(target_rows(matrix, 3), groups, tgt_groups)
    expected = np.array(
        [
            [0.1, 0.5, 0.2, 0.0, 0.1],  # a: x, €, ``, (no piece), ok
            [(0.0 + 0.6) / 2, 0.0, (0.6 + 0.0) / 2, 0.0, (0.3 + 0.4) / 2],  # bc: mean of b, c
        ]
    )
    np.testing.assert_allclose(words, expected)
    # argmax: a -> € (1), bc -> ok (4: 0.35 > 0.3); the empty word never gets a link
    assert word_links(matrix, groups, tgt_groups) == {(1, 0), (4, 1)}
    assert word_links(matrix, groups, tgt_groups, hard="threshold", threshold=0.29) == {
        (1, 0),
        (0, 1),
        (2, 1),
        (4, 1),
    }


def test_shift_att_reads_the_next_row():
    """Rows: the steps predicting x, y and EOS. shift-att aligns x by the step that reads x
    (the row predicting y) and y by the row predicting EOS."""
    src_groups, tgt_groups = [[0], [1], [2]], [[0], [1]]
    matrix = np.array(
        [
            [0.8, 0.1, 0.1, 0.0],  # predicts x (reads BOS)
            [0.1, 0.8, 0.1, 0.0],  # predicts y (reads x)
            [0.1, 0.1, 0.8, 0.0],  # predicts EOS (reads y)
        ]
    )
    np.testing.assert_array_equal(target_rows(matrix, 2), matrix[:2])
    np.testing.assert_array_equal(target_rows(matrix, 2, shift=True), matrix[1:])
    assert word_links(matrix, src_groups, tgt_groups) == {(0, 0), (1, 1)}
    assert word_links(matrix, src_groups, tgt_groups, shift=True) == {(1, 0), (2, 1)}
    with pytest.raises(ValueError, match="matrix has 3 rows, expected 4"):
        target_rows(matrix, 3)


# --------------------------------------------------------------------------- symmetrisation


def test_symmetrisation_by_hand():
    """5 x 5 words. Forward (this run) F = {0-0, 1-1, 2-2, 0-3}, backward (the reverse run, as
    src-tgt) B = {0-0, 1-1, 1-0, 4-4, 3-4}. Intersection {0-0, 1-1}.

    grow-diag (scan source word 0..4, target 0..4, live): at 0-0 its neighbour 1-0 is in the
    union but both words are aligned: no; at 1-1 the diagonal 2-2 is in the union with source 2
    unaligned: added; 2-2's neighbours are not in the union; a second pass adds nothing
    -> {0-0, 1-1, 2-2}.
    final (either word unaligned), over F: 0-3 (target 3 unaligned) added; over B: 1-0 no (both
    aligned), 3-4 added (source 3 free), then 4-4 added (source 4 free although target 4 now is
    aligned) -> {0-0, 1-1, 2-2, 0-3, 3-4, 4-4}.
    final-and (both unaligned): over F: 0-3 no (source 0 aligned); over B: 3-4 added (both
    free), then 4-4 no (target 4 now aligned) -> {0-0, 1-1, 2-2, 3-4}.
    """
    forward = {(0, 0), (1, 1), (2, 2), (0, 3)}
    backward = {(0, 0), (1, 1), (1, 0), (4, 4), (3, 4)}
    assert symmetrize(forward, backward, None) == forward
    assert symmetrize(forward, backward, "none") == forward
    assert symmetrize(forward, backward, "intersection") == {(0, 0), (1, 1)}
    assert symmetrize(forward, backward, "union") == forward | backward
    assert symmetrize(forward, backward, "grow-diag") == {(0, 0), (1, 1), (2, 2)}
    assert symmetrize(forward, backward, "grow-diag-final") == {
        (0, 0),
        (1, 1),
        (2, 2),
        (0, 3),
        (3, 4),
        (4, 4),
    }
    assert symmetrize(forward, backward, "grow-diag-final-and") == {
        (0, 0),
        (1, 1),
        (2, 2),
        (3, 4),
    }
    with pytest.raises(ValueError, match="unknown symmetrization 'gdf'"):
        symmetrize(forward, backward, "gdf")


def test_grow_diag_adds_only_links_that_align_a_new_word():
    """From the intersection {0-0}, grow-diag follows the diagonal 1-1, 2-2 (each aligns two new
    words); at 2-2 its neighbours 3-2 (source 3 new) and 2-3 (target 3 new) come in, and then
    3-3, although in the union and next to both, aligns no new word: left out, by final too."""
    forward = {(0, 0), (1, 1), (2, 2), (3, 3)}
    backward = {(0, 0), (3, 2), (2, 3)}
    grown = {(0, 0), (1, 1), (2, 2), (3, 2), (2, 3)}
    assert symmetrize(forward, backward, "grow-diag") == grown
    assert symmetrize(forward, backward, "grow-diag-final") == grown
    assert symmetrize(forward, backward, "grow-diag-final-and") == grown


# --------------------------------------------------------------------------- layer and head


def test_choose_attention_on_hand_made_weights():
    # (B=1, L=2, H=2, T=1, S=2): every layer/head a distinct row
    weights = np.array([[[[[0.9, 0.1]], [[0.7, 0.3]]], [[[0.5, 0.5]], [[0.1, 0.9]]]]])
    assert weights.shape == (1, 2, 2, 1, 2)
    pick = lambda **kw: choose_attention(weights, **kw)[0, 0].tolist()  # noqa: E731
    assert pick(layer=0, head=1) == [0.7, 0.3]
    assert pick(layer=1, head=0) == [0.5, 0.5]
    assert pick(layer=-1, head=1) == [0.1, 0.9]
    assert pick(layer=0, head="mean") == pytest.approx([0.8, 0.2])
    assert pick(layer="mean", head=1) == pytest.approx([0.4, 0.6])
    assert pick(layer="mean", head="mean") == pytest.approx([0.55, 0.45])
    # None: the model's own (alignment_layer, alignment_head: None = mean of heads)
    assert pick(default_layer=-1, default_head=None) == pytest.approx([0.3, 0.7])
    assert pick(default_layer=0, default_head=0) == [0.9, 0.1]
    with pytest.raises(ConfigError, match=r"alignment.layer=2 is out of range: the model has 2"):
        pick(layer=2)
    with pytest.raises(ConfigError, match=r"alignment.head=-3 is out of range"):
        pick(head=-3)


def test_layer_and_head_pick_a_tiny_transformers_weights():
    sizes = dict(d_model=16, heads=2, ff_size=32, encoder_layers=1)  # and 2 decoder layers
    model = tiny_transformer(11, 13, **sizes)
    src_ids = [[5, 6, 7, 3], [8, 9, 3]]  # with EOS
    tgt_ids = [[4, 5, 6], [7, 8]]
    from seq2seq.data.batching import collate

    batch = collate(src_ids, tgt_ids, [0, 1])
    with torch.inference_mode():
        every = model.cross_attention_weights(
            batch.src, batch.src_mask, batch.tgt_in, batch.tgt_mask
        ).numpy()  # (2, L=2, H=2, T, S)
    assert every.shape[1:3] == (2, 2)
    # the two layers and heads differ, so picking the wrong one would show
    assert not np.allclose(every[:, 0, 0], every[:, 0, 1])
    assert not np.allclose(every[:, 0, 1], every[:, 1, 1])

    def matrices(**kw):
        return teacher_forced_matrices(model, src_ids, tgt_ids, device="cpu", **kw)

    for k, (s, t) in enumerate(zip(src_ids, tgt_ids, strict=True)):
        rows, cols = len(t) + 1, len(s)
        np.testing.assert_allclose(matrices(layer=0, head=1)[k], every[k, 0, 1, :rows, :cols])
        np.testing.assert_allclose(
            matrices(layer="mean", head="mean")[k],
            every[k, :, :, :rows, :cols].mean(axis=(0, 1)),
            rtol=1e-6,
        )
        np.testing.assert_allclose(
            matrices(layer="mean", head=0)[k], every[k, :, 0, :rows, :cols].mean(axis=0)
        )
        # default: the model's alignment (last layer, mean of heads), what decoding uses
        np.testing.assert_allclose(
            matrices()[k], every[k, -1, :, :rows, :cols].mean(axis=0), rtol=1e-6
        )
        np.testing.assert_allclose(matrices(layer=-1)[k], matrices()[k], rtol=1e-6)
    # a model configured with alignment_layer=0 / alignment_head=1 is its own default
    own = tiny_transformer(11, 13, **sizes, alignment_layer=0, alignment_head=1)
    np.testing.assert_allclose(
        teacher_forced_matrices(own, src_ids, tgt_ids, device="cpu")[0],
        every[0, 0, 1, :4, :4],
        rtol=1e-6,
    )
    check_extraction(model, {"layer": "1", "head": "mean"})
    with pytest.raises(ConfigError, match=r"alignment.layer=2 is out of range: this run's model"):
        check_extraction(model, {"layer": "2"})
    with pytest.raises(ConfigError, match=r"alignment.head=2 is out of range"):
        check_extraction(model, {"head": "2"})


def test_layer_and_head_are_refused_for_an_rnn():
    from seq2seq.models.builders import build_model
    from tests.conftest import compose_config

    cfg = compose_config("model.emb_size=8", "model.hidden_size=8")
    model = build_model(cfg.model, cfg.attention, src_vocab_size=11, tgt_vocab_size=11)
    check_extraction(model, {"shift": True})  # shift-att works for any attention
    with pytest.raises(ConfigError, match="choose among a Transformer's cross-attention"):
        check_extraction(model, {"layer": "0"})
    with pytest.raises(ConfigError, match="choose among a Transformer's cross-attention"):
        teacher_forced_matrices(model, [[5, 3]], [[6]], device="cpu", head="mean")


def test_alignment_options_are_checked_in_one_line():
    check_alignment_options({"layer": "-2", "head": "mean", "symmetrize": "none"})
    with pytest.raises(ConfigError) as err:
        check_alignment_options(
            {
                "hard": "max",
                "layer": "last",
                "symmetrize": "gdf",
                "gold_index_base": 2,
            }
        )
    message = str(err.value)
    assert "\n" not in message
    assert "alignment.hard must be one of argmax, threshold, got 'max'" in message
    assert "alignment.layer must be an index (negative from the end), mean, or null" in message
    assert (
        "alignment.symmetrize must be one of none, intersection, union, grow-diag, "
        "grow-diag-final, grow-diag-final-and, got 'gdf'" in message
    )
    assert "alignment.gold_index_base must be 0 or 1, got 2" in message
    with pytest.raises(ConfigError, match="symmetrize=union needs alignment.reverse_run_dir"):
        check_alignment_options({"symmetrize": "union"})
    with pytest.raises(ConfigError, match="reverse_run_dir is read only to symmetrise"):
        check_alignment_options({"reverse_run_dir": "x"})


# --------------------------------------------------------------------------- the real en-cs gold

GOLD = default_data_dir("gold")


@pytest.mark.skipif(GOLD is None, reason="../shared/data/gold not found")
def test_the_real_encs_gold_reads_both_ways():
    left, right = read_gold_text(Path(GOLD) / "encs.src-tgt")
    assert len(left) == len(right) == 78
    path = Path(GOLD) / "encs.gold"
    en_cs = load_gold(path, left, right)  # an en->cs model: no swap
    cs_en = load_gold(path, right, left, {"gold_reversed": True})  # a cs->en model
    assert len(en_cs) == 78 and sum(map(len, en_cs.sure)) > 1000
    assert cs_en.sure == [{(t, s) for s, t in links} for links in en_cs.sure]
    assert cs_en.possible == [{(t, s) for s, t in links} for links in en_cs.possible]
    assert all(s <= p for s, p in zip(en_cs.sure, en_cs.possible, strict=True))
