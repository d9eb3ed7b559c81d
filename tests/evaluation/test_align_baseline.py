"""seq2seq-align-baseline: eflomal really runs (a tiny corpus, seconds), its links and a run's
are scored by the same AER function against the same gold links, and what is refused."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from seq2seq.evaluation import aer, baseline
from seq2seq.evaluation.alignments import symmetrize
from seq2seq.evaluation.baseline import corpus_words, eflomal_align
from tests.cli.runner import assert_one_error_line, run_main
from tests.conftest import needs_multi30k

needs_eflomal = pytest.mark.skipif(
    importlib.util.find_spec("eflomal") is None,
    reason='eflomal is not installed: pip install "seq2seq[align]"',
)


@needs_eflomal
def test_eflomal_aligns_a_tiny_corpus():
    """The same three-word sentence pairs in shuffled contexts: both directions find the word
    pairs, as (src, tgt) links."""
    src = [["der", "hund"], ["die", "katze"], ["der", "katze"], ["die", "hund"]] * 15
    tgt = [["the", "dog"], ["the", "cat"], ["the", "cat"], ["the", "dog"]] * 15
    forward, reverse = eflomal_align(src, tgt, n_samplers=1)
    assert len(forward) == len(reverse) == 60
    for links in (forward[0], reverse[0], forward[1], reverse[1]):
        assert links <= {(0, 0), (1, 1), (0, 1), (1, 0)}
    assert (1, 1) in forward[0] and (1, 1) in reverse[0]  # hund-dog
    assert (1, 1) in forward[1] and (1, 1) in reverse[1]  # katze-cat


def test_the_training_corpus_is_tokenized_like_the_gold():
    assert corpus_words(["A man rides a bike.", "Two dogs, playing."]) == [
        ["A", "man", "rides", "a", "bike", "."],
        ["Two", "dogs", ",", "playing", "."],
    ]
    assert corpus_words(["A man."], "none") == [["A", "man."]]


def align_baseline(capfd, monkeypatch, *args: str):
    return run_main("align_baseline", list(args), capfd, monkeypatch)


@needs_eflomal
@needs_multi30k
def test_eflomal_and_a_run_are_scored_by_the_same_function_on_the_same_links(
    gold_runs, gold_corpus, gold_files, tmp_path, capfd, monkeypatch
):
    """The command's table: eflomal trained on the tiny corpus's 60 training pairs plus the 3
    gold pairs, and the Transformer run (layer 0, head 1); every score is one call of
    alignment_error_rate with the same gold sure/possible lists."""
    calls = []
    real = aer.alignment_error_rate

    def spy(predicted, sure, possible):
        calls.append((predicted, sure, possible))
        return real(predicted, sure, possible)

    monkeypatch.setattr(aer, "alignment_error_rate", spy)
    eflomal_runs = []
    real_align = baseline.eflomal_align

    def spy_align(*args, **kwargs):
        eflomal_runs.append(real_align(*args, **kwargs))
        return eflomal_runs[-1]

    monkeypatch.setattr(baseline, "eflomal_align", spy_align)
    out = tmp_path / "table.json"
    g = gold_files
    result = align_baseline(
        capfd,
        monkeypatch,
        f"data.dir={gold_corpus}",
        "data.src=de",
        "data.tgt=en",
        f"gold_text={g['text']}",
        f"gold_alignments={g['links']}",
        f"run_dirs=[{gold_runs['forward']}]",
        "alignment.layer=0",
        "alignment.head=1",
        "eflomal.n_samplers=1",
        "device=cpu",
        f"out={out}",
    )
    assert result.code == 0, result.stderr[-3000:]
    table = json.loads(out.read_text())
    rows = table["rows"]
    assert [r["aligner"].split(" ")[0] for r in rows] == ["eflomal", str(gold_runs["forward"])]
    assert table["gold"] | {"links": "", "pairs_file": ""} == {
        "links": "",
        "pairs_file": "",
        "pairs": 3,
        "sure": 15,
        "possible": 17,
        "direction": "de->en",
        "format": "pharaoh",
        "index_base": 0,
        "reversed": False,
    }
    assert "(63 pairs" not in rows[0]["setup"] and "(60 pairs" in rows[0]["setup"]
    assert "layer 0, head 1, no shift, argmax, symmetrize none" == rows[1]["setup"]
    # one call per row, the same gold lists each time
    assert len(calls) == 2
    (eflomal_links, sure, possible), (run_links, sure2, possible2) = calls
    assert sure2 is sure and possible2 is possible
    assert sure == [
        {(0, 0), (1, 1), (2, 2), (3, 4), (4, 5)},
        {(0, 0), (1, 1), (2, 2), (3, 3), (4, 5), (5, 6)},
        {(0, 0), (1, 1), (2, 2), (3, 3)},
    ]
    for row, (predicted, _, _) in zip(rows, calls, strict=True):
        scores = real(predicted, sure, possible)
        assert row["aer"] == round(scores["aer"], 4)
        assert row["align_precision"] == round(scores["precision"], 4)
        assert row["links"] == sum(len(a) for a in predicted)
    # eflomal's links: its two directions on the last 3 (gold) pairs, grow-diag-final
    ((forward, reverse),) = eflomal_runs
    assert len(forward) == 63
    expected = [
        symmetrize(f, r, "grow-diag-final") for f, r in zip(forward[60:], reverse[60:], strict=True)
    ]
    assert eflomal_links == expected
    # the printed table
    assert "| aligner | setup | AER | precision | recall | links |" in result.stdout
    assert f"| {rows[0]['aer']:.4f} |" in result.stdout


def test_without_eflomal_the_error_names_the_extra(capfd, monkeypatch):
    monkeypatch.setitem(sys.modules, "eflomal", None)  # import eflomal -> ImportError
    result = align_baseline(
        capfd, monkeypatch, "gold_text=x.txt", "gold_alignments=x.align", "device=cpu"
    )
    assert_one_error_line(
        result,
        'eflomal is not installed: pip install "seq2seq[align]" (the optional extra of '
        "seq2seq-align-baseline)",
    )


@needs_eflomal
@needs_multi30k
def test_a_run_of_the_other_direction_is_refused(
    gold_runs, gold_corpus, gold_files, capfd, monkeypatch
):
    g = gold_files
    result = align_baseline(
        capfd,
        monkeypatch,
        f"data.dir={gold_corpus}",
        "data.src=de",
        "data.tgt=en",
        f"gold_text={g['text']}",
        f"gold_alignments={g['links']}",
        f"run_dirs=[{gold_runs['reverse']}]",
        "device=cpu",
    )
    reverse = gold_runs["reverse"]
    assert_one_error_line(
        result,
        f"run {reverse} translates en->de, but the table is de->en (data.src=de data.tgt=en): "
        f"score it with data.src=en data.tgt=de, or give it as alignment.reverse_run_dir= of a "
        "de->en run",
    )


def test_bad_baseline_options_are_refused_in_one_line(capfd, monkeypatch):
    result = align_baseline(capfd, monkeypatch, "gold_text=x.txt", "device=cpu")
    assert_one_error_line(
        result,
        "gold_alignments=FILE is required: the gold links (with gold_text=FILE, or src_file= "
        "and ref_file=, the pairs they describe)",
    )
    result = align_baseline(
        capfd,
        monkeypatch,
        "gold_alignments=x.align",
        "eflomal.model=4",
        "eflomal.symmetrize=gdfa",
        "device=cpu",
    )
    assert_one_error_line(
        result,
        "the gold pairs are needed: gold_text=FILE ('source ||| target' lines) or src_file= and "
        "ref_file=; eflomal.model must be 1 (IBM1), 2 (+HMM) or 3 (+fertility), got 4; "
        "eflomal.symmetrize must be one of none, intersection, union, grow-diag, "
        "grow-diag-final, grow-diag-final-and, got 'gdfa'",
    )
    result = align_baseline(capfd, monkeypatch, "gold_alignments=x", "eflomal.modle=3")
    assert result.code == 1 and len(result.error_lines) == 1
    assert "eflomal.modle" in result.error_lines[0]
