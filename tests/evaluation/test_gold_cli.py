"""seq2seq-evaluate gold_alignments=F on pre-tokenized gold pairs: every way of giving the pairs
and the links scores the same, the extraction options reach the scores, symmetrisation with a
run of the other direction, and what is refused (one line, before decoding)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seq2seq.config import default_data_dir
from seq2seq.evaluation.aer import load_gold, read_gold_text, run_word_links, score_gold
from seq2seq.evaluation.alignments import encode_words, symmetrize
from seq2seq.evaluation.run import load_run
from tests.cli.runner import assert_one_error_line, run_main
from tests.conftest import needs_multi30k

pytestmark = needs_multi30k  # the tiny corpus is local, but the runs' data.languages come from it


def evaluate(run_dir: Path, capfd, monkeypatch, *args: str):
    argv = [f"run_dir={run_dir}", "device=cpu", "decode.beam_size=1", *args]
    return run_main("evaluate", argv, capfd, monkeypatch)


def metrics_of(run_dir: Path, name: str) -> dict:
    return json.loads((run_dir / "eval" / name / "metrics.json").read_text())


def test_every_way_of_giving_the_gold_scores_the_same(gold_runs, gold_files, capfd, monkeypatch):
    run = gold_runs["forward"]
    g = gold_files
    ways = {
        "text": [f"gold_text={g['text']}", f"gold_alignments={g['links']}"],
        "files": [f"src_file={g['src']}", f"ref_file={g['ref']}", f"gold_alignments={g['links']}"],
        "wpt": [
            f"gold_text={g['text']}",
            f"gold_alignments={g['wpt']}",
            "alignment.gold_format=wpt",
            "alignment.gold_index_base=1",
        ],
        "reversed": [  # en ||| de text, en-de links, for this de->en model
            f"gold_text={g['rtext']}",
            f"gold_alignments={g['rlinks']}",
            "alignment.gold_reversed=true",
        ],
    }
    scores = {}
    for name, args in ways.items():
        result = evaluate(run, capfd, monkeypatch, *args, f"name={name}")
        assert result.code == 0, result.stderr[-3000:]
        metrics = metrics_of(run, name)
        scores[name] = {k: metrics[k] for k in ("aer", "align_precision", "align_recall")}
        assert metrics["alignment_links"] > 0 and metrics["sentences"] == 3
        assert "AER " in result.stdout and "(layer model's, head model's, no shift" in result.stdout
    assert scores["text"] == scores["files"] == scores["wpt"] == scores["reversed"], scores
    # the same as scoring the loaded run's links directly
    loaded = load_run(run, device="cpu")
    left, right = read_gold_text(g["text"])
    gold = load_gold(g["links"], left, right)
    direct = score_gold(
        run_word_links(loaded.model, loaded.tokenizer, left, right, device="cpu"), gold
    )
    assert {k: direct[k] for k in scores["text"]} == scores["text"]


def test_layer_head_and_shift_reach_the_scores(gold_runs, gold_files, capfd, monkeypatch):
    run = gold_runs["forward"]
    g = gold_files
    options = ["alignment.layer=0", "alignment.head=1", "alignment.shift=true"]
    args = [f"gold_text={g['text']}", f"gold_alignments={g['links']}", "name=chosen", *options]
    result = evaluate(run, capfd, monkeypatch, *args)
    assert result.code == 0, result.stderr[-3000:]
    metrics = metrics_of(run, "chosen")
    assert metrics["alignment_options"] | {"reverse_run_dir": None} == {
        "layer": "0",
        "head": "1",
        "shift": True,
        "hard": "argmax",
        "threshold": 0.3,
        "symmetrize": "none",
        "reverse_run_dir": None,
    }
    assert "(layer 0, head 1, shift-att, argmax, symmetrize none)" in result.stdout
    loaded = load_run(run, device="cpu")
    left, right = read_gold_text(g["text"])
    alignment = {"layer": "0", "head": "1", "shift": True}
    links = run_word_links(
        loaded.model, loaded.tokenizer, left, right, device="cpu", alignment=alignment
    )
    expected = score_gold(links, load_gold(g["links"], left, right))
    assert metrics["aer"] == expected["aer"] and metrics["alignment_links"] == expected["links"]
    # shift-att: one link per target word still (argmax), read one row later
    assert expected["links"] == sum(len(r) for r in right)


def test_symmetrisation_with_a_run_of_the_other_direction(
    gold_runs, gold_files, capfd, monkeypatch
):
    run, reverse = gold_runs["forward"], gold_runs["reverse"]
    g = gold_files
    base = [f"gold_text={g['text']}", f"gold_alignments={g['links']}"]
    links = {}
    for method in ("none", "intersection", "union", "grow-diag-final"):
        sym = (
            []
            if method == "none"
            else [
                f"alignment.symmetrize={method}",
                f"alignment.reverse_run_dir={reverse}",
            ]
        )
        result = evaluate(run, capfd, monkeypatch, *base, *sym, f"name=sym_{method}")
        assert result.code == 0, result.stderr[-3000:]
        metrics = metrics_of(run, f"sym_{method}")
        assert metrics["alignment_options"]["symmetrize"] == method
        links[method] = metrics
    # the same combination computed here from the two runs' own links
    left, right = read_gold_text(g["text"])
    gold = load_gold(g["links"], left, right)
    fwd_run, rev_run = load_run(run, device="cpu"), load_run(reverse, device="cpu")
    forward = run_word_links(fwd_run.model, fwd_run.tokenizer, left, right, device="cpu")
    backward = run_word_links(rev_run.model, rev_run.tokenizer, right, left, device="cpu")
    backward = [{(s, t) for t, s in b} for b in backward]  # (en, de) -> (de, en)
    for method in ("intersection", "union", "grow-diag-final"):
        combined = [symmetrize(f, b, method) for f, b in zip(forward, backward, strict=True)]
        expected = score_gold(combined, gold)
        assert links[method]["aer"] == expected["aer"], method
        assert links[method]["alignment_links"] == expected["links"], method
    n = {m: links[m]["alignment_links"] for m in links}
    assert n["intersection"] <= n["none"] <= n["union"]
    assert n["intersection"] <= n["grow-diag-final"] <= n["union"]


@pytest.mark.parametrize(
    ("which", "args", "expected"),
    [
        (
            "forward",
            ["alignment.symmetrize=union"],
            "alignment.symmetrize=union needs alignment.reverse_run_dir=DIR: a run trained in "
            "the other direction (target -> source)",
        ),
        (
            "reverse",
            ["alignment.layer=0"],
            "alignment.layer and alignment.head choose among a Transformer's cross-attention "
            "layers and heads; this run's model (RNNSeq2Seq) has one attention: leave them unset",
        ),
        (
            "forward",
            ["alignment.head=2"],
            "alignment.head=2 is out of range: this run's model has 2 heads (valid: -2..1 or mean)",
        ),
        (
            "forward",
            ["alignment.layer=top"],
            "alignment.layer must be an index (negative from the end), mean, or null (the "
            "model's own), got 'top'",
        ),
    ],
    ids=["no-reverse-run", "layer-of-an-rnn", "head-out-of-range", "layer-not-an-index"],
)
def test_bad_extraction_options_are_refused_in_one_line(
    which, args, expected, gold_runs, gold_files, capfd, monkeypatch
):
    g = gold_files
    run = gold_runs[which]
    text, links = (g["text"], g["links"]) if which == "forward" else (g["rtext"], g["rlinks"])
    result = evaluate(
        run, capfd, monkeypatch, f"gold_text={text}", f"gold_alignments={links}", "name=bad", *args
    )
    assert_one_error_line(result, expected)
    assert not (run / "eval" / "bad").exists()  # refused before decoding


def test_bad_gold_inputs_are_refused_in_one_line(
    gold_runs, gold_files, tmp_path, capfd, monkeypatch
):
    run, g = gold_runs["forward"], gold_files
    cases = [
        (
            [f"gold_text={g['text']}", f"src_file={g['src']}", f"gold_alignments={g['links']}"],
            "gold_text= holds both sides of the gold pairs: give it or src_file=/ref_file=, not both",
        ),
        ([f"gold_text={g['text']}"], "gold_text= needs gold_alignments=: the links of its pairs"),
        (
            [f"gold_text={g['text']}", f"gold_alignments={g['wpt']}"],  # WPT read as Pharaoh
            f"line counts differ: {g['wpt']} has {len(g['wpt'].read_text().splitlines())} lines, "
            f"{g['text']} has 3",
        ),
        (
            [
                f"gold_text={g['text']}",
                f"gold_alignments={g['links']}",
                "alignment.symmetrize=intersection",
                f"alignment.reverse_run_dir={run}",  # the same direction
            ],
            f"alignment.reverse_run_dir={run} translates de->en, but symmetrisation needs a run "
            "trained en->de (this run: de->en)",
        ),
    ]
    bad_text = tmp_path / "bad.txt"
    bad_text.write_text("Ein Mann ||| A man\nEine Frau lacht .\n", encoding="utf-8")
    cases.append(
        (
            [f"gold_text={bad_text}", f"gold_alignments={g['links']}"],
            f"{bad_text} line 2: expected 'source ||| target' (one '|||' between two non-empty "
            "sides), got 'Eine Frau lacht .'",
        )
    )
    for args, expected in cases:
        result = evaluate(run, capfd, monkeypatch, *args, "name=bad")
        assert_one_error_line(result, expected)
        assert not (run / "eval" / "bad").exists()


GOLD = default_data_dir("gold")


@pytest.mark.skipif(GOLD is None, reason="../shared/data/gold not found")
def test_token_by_token_ids_are_the_sentences_ids_on_the_real_gold(gold_runs):
    """What the model reads for the real en-cs gold: encoding token by token gives exactly the
    ids of the whole sentence (sentencepiece never joins two space-separated tokens)."""
    tokenizer = load_run(gold_runs["forward"], device="cpu").tokenizer
    left, right = read_gold_text(Path(GOLD) / "encs.src-tgt")
    for words in left + right:
        ids, groups = encode_words(tokenizer.src, words)
        assert ids == tokenizer.src.encode(" ".join(words), out_type=int)
        assert len(groups) == len(words) and all(groups)
