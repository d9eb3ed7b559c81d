"""What the comparison may claim (seq2seq.compare.significance) on fake runs whose numbers are
set by hand: the omnibus gate before better / worse, the pairwise matrix's gate and family, the
runs a ranking may hold together, BLEU and chrF disagreeing."""

from __future__ import annotations

import pytest

from seq2seq.compare.notes import omnibus_lines, pairwise_table
from seq2seq.compare.runs import load_record
from seq2seq.compare.significance import significance
from seq2seq.compare.variants import group_runs
from tests.compare.fake_runs import fake_run

# every seed ranks additive > content > location > none
AGREE = {
    "none": [10.0, 10.5, 11.0],
    "additive": [30.0, 31.0, 32.0],
    "content": [25.0, 26.0, 27.5],
    "location": [20.0, 21.5, 22.0],
}


def significance_of(tmp_path, corpus, bleu: dict[str, list[float]], base="none", **per_run):
    """``bleu``: attention -> test BLEU of seeds 1, 2, 3 (None: no run). ``per_run``:
    ``"attention:seed"`` -> fake_run's extra keywords for that run."""
    records = []
    for attention, scores in bleu.items():
        for seed, score in enumerate(scores, start=1):
            if score is None:
                continue
            extra = per_run.get(f"{attention}:{seed}", {})
            name = f"{attention}_s{seed}"
            run = fake_run(
                tmp_path / "runs", name, corpus, attention=attention, seed=seed, bleu=score, **extra
            )
            records.append(load_record(run))
    variants = group_runs(records)
    labels = {v.runs[0].config["attention"]["name"]: label for label, v in variants.items()}
    return significance(variants, labels.get(base)), labels


def test_better_needs_the_omnibus_to_reject_first(tmp_path, corpus):
    # every seed ranks additive > content > location > none: Friedman's exact p = 24 / 24^3
    tests, label = significance_of(
        tmp_path / "agree",
        corpus,
        AGREE,
    )
    assert tests.omnibus.p == pytest.approx(24 / 24**3)
    assert tests.p_holm[label["additive"]] < 0.05
    assert tests.direction(label["additive"]) == "better"
    # among the three scores, ranked alike by every seed: 6 / 6^3 < 0.05, so pairs may be marked
    assert tests.scores_omnibus.p == pytest.approx(6 / 6**3)
    assert tests.matrix[(label["additive"], label["location"])].p_holm < 0.05
    assert tests.pair_direction(label["additive"], label["location"]) == "better"
    assert tests.pair_direction(label["location"], label["additive"]) == "worse"
    (_, _, rows) = pairwise_table(tests)[0]
    assert rows[0][0] == label["additive"] and rows[0][-1].endswith(" +")

    # additive is 5.0 +- 0.1 above none in every seed (Holm p < 0.05), but content and
    # location jump about: Friedman's statistic 1.8 rejects nothing, so no claim is made
    tests, label = significance_of(
        tmp_path / "erratic",
        corpus,
        {
            "none": [10.0, 10.1, 9.9],
            "additive": [15.0, 15.2, 14.8],
            "content": [30.0, 5.0, 32.0],
            "location": [29.0, 31.0, 4.0],
        },
    )
    assert tests.omnibus.statistic == pytest.approx(1.8) and tests.omnibus.p > 0.05
    assert tests.p_holm[label["additive"]] < 0.05
    assert tests.direction(label["additive"]) == ""
    assert tests.scores_omnibus.p > 0.05
    assert all(tests.pair_direction(a, b) == "" for a, b in tests.matrix)


def test_kendalls_w_is_given_for_the_attention_scores_only(tmp_path, corpus):
    tests, _ = significance_of(
        tmp_path,
        corpus,
        AGREE,
    )
    every, scores = omnibus_lines(tests)
    assert "permuting each seed's test BLEUs" in every and "Kendall's W" not in every
    assert scores.endswith("Kendall's W = 1.000.")


def test_a_run_of_another_commit_is_ranked_with_nothing(tmp_path, corpus):
    tests, label = significance_of(
        tmp_path,
        corpus,
        AGREE,
        **{"content:3": {"commit": "another"}},
    )
    # seed 3's content run is not comparable with the baseline's: seed 3 is no block
    assert tests.omnibus.blocks == (1, 2) and tests.scores_omnibus.blocks == (1, 2)
    assert tests.against_base[label["content"]].n == 2
    assert tests.matrix[(label["additive"], label["content"])].test.n == 2
    assert tests.matrix[(label["additive"], label["location"])].test.n == 3


def test_a_baseline_run_of_another_commit_drops_no_attention_score(tmp_path, corpus):
    tests, label = significance_of(tmp_path, corpus, AGREE, **{"none:3": {"commit": "another"}})
    # seed 3 has no comparable baseline: no block of the every-variant test, no pairing with
    # `none`; the scores are comparable with each other there and keep all three seeds
    assert tests.omnibus.blocks == (1, 2) and tests.against_base[label["additive"]].n == 2
    assert tests.scores_omnibus.blocks == (1, 2, 3)
    assert tests.scores_omnibus.p == pytest.approx(6 / 6**3)
    assert tests.matrix[(label["additive"], label["content"])].test.n == 3


def test_at_each_seed_the_baselines_group_is_ranked_else_the_largest(tmp_path, corpus):
    scores = {k: v for k, v in AGREE.items() if k != "none"}
    other = {"content:2": {"commit": "another"}, "additive:2": {"commit": "another"}}
    # seed 2: additive and content on one commit, location on another
    tests, label = significance_of(tmp_path / "none", corpus, scores, base=None, **other)
    assert tests.base is None and tests.scores_omnibus.blocks == (1, 3)
    assert tests.matrix[(label["additive"], label["content"])].test.n == 3  # the larger group
    assert tests.matrix[(label["content"], label["location"])].test.n == 2
    tests, label = significance_of(tmp_path / "base", corpus, scores, base="location", **other)
    assert tests.matrix[(label["additive"], label["content"])].test.n == 2  # the baseline's
    assert tests.matrix[(label["content"], label["location"])].test.n == 2


def test_the_matrix_states_the_family_it_tested(tmp_path, corpus):
    tests, label = significance_of(
        tmp_path,
        corpus,
        AGREE | {"location": [20.0, None, None]},  # one seed: its pairs are not tested
    )
    (title, _, rows) = pairwise_table(tests)[0]
    assert "over the 1 tested pair(s) (2 pair(s) untested" in title
    tested = tests.matrix[(label["additive"], label["content"])]
    assert tested.p_holm == pytest.approx(tested.test.p)  # a family of one
    by_label = {row[0]: row[1:] for row in rows}
    assert by_label[label["location"]][0] == "-10.00 (n=1)"


def test_bleu_and_chrf_disagree_only_over_the_seeds_that_have_both(tmp_path, corpus):
    # ΔBLEU +1, +1, -10 (mean over all three: -2.67); chrF only on seeds 1 and 2, +2 each:
    # over the seeds with both, BLEU and chrF agree
    tests, label = significance_of(
        tmp_path,
        corpus,
        {"none": [20.0, 20.0, 20.0], "additive": [21.0, 21.0, 10.0]},
        **{"none:3": {"chrf": None}, "additive:3": {"chrf": None}},
        **{"additive:1": {"chrf": 42.0}, "additive:2": {"chrf": 42.0}},
    )
    assert tests.against_base[label["additive"]].mean == pytest.approx(-8 / 3)
    assert tests.chrf_against_base[label["additive"]].mean == pytest.approx(2.0)
    assert tests.bleu_chrf_disagree[label["additive"]] is False
