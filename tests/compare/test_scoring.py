"""Which runs' test BLEUs are comparable: runs scored with another tokenizer or against other
test references are flagged and never paired."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from seq2seq.compare import compare
from tests.compare.fake_runs import TEST_REFERENCES, fake_run


def mixed_sweep(root: Path, corpus: Path, last_corpus: Path | None = None, **last) -> Path:
    """none and additive at seeds 1 and 2; additive seed 2 made on ``last_corpus`` (default:
    ``corpus``) with ``last``'s options."""
    fake_run(root, "0_none_s1", corpus, attention="none", seed=1, bleu=20)
    fake_run(root, "1_additive_s1", corpus, seed=1, bleu=24)
    fake_run(root, "2_none_s2", corpus, attention="none", seed=2, bleu=22)
    fake_run(root, "3_additive_s2", last_corpus or corpus, seed=2, bleu=30, **last)
    return root


def paired_calls(monkeypatch) -> list:
    from seq2seq.compare import scoring

    calls = []
    real = scoring.paired_bootstrap

    def spy(baseline, systems, references, n_samples, tokenize):
        calls.append((baseline[1][0], [name for name, _ in systems], tokenize))
        return real(baseline, systems, references, n_samples=n_samples, tokenize=tokenize)

    monkeypatch.setattr(scoring, "paired_bootstrap", spy)
    return calls


def test_runs_scored_with_another_tokenizer_are_flagged_and_never_paired(
    tmp_path, corpus, monkeypatch
):
    calls = paired_calls(monkeypatch)
    zh = "nrefs:1|case:mixed|eff:no|tok:zh|smooth:exp|version:2.6.0"
    sweep = mixed_sweep(tmp_path / "mixed", corpus, bleu_tokenize="zh", sacrebleu_signature=zh)
    out = tmp_path / "report"
    rows = compare([sweep], out, n_bootstrap=20)

    md = (out / "comparison.md").read_text()
    assert md.splitlines()[0] == (
        "NOT COMPARABLE: test BLEU scored with different BLEU tokenizers (13a: 3 run(s), zh: 1 "
        "run(s)); ΔBLEU and paired tests only between runs that share tokenizer, references "
        "and commit"
    )
    held = md.splitlines()[2]
    assert held.startswith("Held fixed: ") and "bleu:" not in held
    header = next(line for line in md.splitlines() if line.startswith("| variant"))
    assert header.endswith("| bleu |")  # the tokenizer is a column: it varies
    assert "| tokenize=13a; tokenize=zh |" in md  # additive's runs
    # seed 1 is paired (both 13a); seed 2's additive (zh) against none (13a) is not
    table = {r["variant"]: r for r in csv.DictReader((out / "comparison.csv").open())}
    assert table["additive"]["diff_per_seed"] == "1:4.0000"
    assert table["additive"]["paired_seeds"] == "1"
    assert calls == [("a dog none s1", ["additive"], "13a"), ("a dog none s2", [], "13a")]
    assert [r["bleu"] for r in rows] == ["tokenize=13a"] * 3 + ["tokenize=zh"]


def test_runs_against_other_test_references_are_flagged_and_never_paired(
    tmp_path, corpus, monkeypatch
):
    calls = paired_calls(monkeypatch)
    other = tmp_path / "other_corpus"
    shutil.copytree(corpus, other)
    (other / "test.en").write_text("".join(f"{r} again\n" for r in TEST_REFERENCES))
    sweep = mixed_sweep(tmp_path / "mixed", corpus, other, data_name="toy2")
    out = tmp_path / "report"
    compare([sweep], out, n_bootstrap=20)

    first = (out / "comparison.md").read_text().splitlines()[0]
    assert first == (
        "NOT COMPARABLE: test BLEU scored with 2 different test reference sets (toy de-en: 3 "
        "run(s), toy2 de-en: 1 run(s)); ΔBLEU and paired tests only between runs that share "
        "tokenizer, references and commit"
    )
    table = {r["variant"]: r for r in csv.DictReader((out / "comparison.csv").open())}
    assert table["additive"]["diff_per_seed"] == "1:4.0000"
    assert calls == [("a dog none s1", ["additive"], "13a"), ("a dog none s2", [], "13a")]


def test_a_run_saved_before_the_data_spec_shares_the_test_references_of_a_new_one():
    """Runs of one sweep before and after an upgrade are paired: fields the old config lacks
    count as their defaults, and where the local copy lies is not part of the key."""
    from types import SimpleNamespace

    from seq2seq.compare.scoring import reference_key

    old = {"name": "multi30k", "src": "de", "tgt": "en", "dir": "${local_corpus:multi30k}"}
    old |= {"files": {"test": "test_2016_flickr"}, "eval_limit": None, "hub_id": "x/m30k"}
    new = old | {
        "dir": "${local_corpus:multi30k,${.hub_id},x/m30k}",
        "format": "text",
        "columns": {},
        "carve": {"validation": 0, "test": 0, "seed": 1},
        "load_kwargs": {},
        "hub_config": None,
        "revision": None,
    }
    key = reference_key
    assert key(SimpleNamespace(config={"data": old})) == key(SimpleNamespace(config={"data": new}))
    carved = new | {"carve": {"validation": 0, "test": 500, "seed": 1}}
    assert key(SimpleNamespace(config={"data": carved})) != key(
        SimpleNamespace(config={"data": new})
    )


def test_a_run_without_its_test_references_is_noted_and_never_tested(sweep, tmp_path, monkeypatch):
    """Runs made before the final test wrote hyps/test.src.txt and test.ref.txt: their BLEU
    differences are paired, but no bootstrap and no BLEU by length (compare never reads the
    corpus)."""
    calls = paired_calls(monkeypatch)
    (sweep / "3_additive_s2" / "hyps" / "test.ref.txt").unlink()
    out = tmp_path / "report"
    compare([sweep], out, n_bootstrap=20)

    md = (out / "comparison.md").read_text()
    assert (
        "`additive` seed 2 (3_additive_s2): hyps/test.src.txt or hyps/test.ref.txt missing or "
        "unreadable (no paired bootstrap, no BLEU by length)"
    ) in md
    assert calls == [("a dog none s1", ["additive"], "13a"), ("a dog none s2", [], "13a")]
    table = {r["variant"]: r for r in csv.DictReader((out / "comparison.csv").open())}
    assert table["additive"]["diff_per_seed"] == "1:4.0000 2:5.0000"
    assert table["additive"]["tested_seeds"] == "1"
