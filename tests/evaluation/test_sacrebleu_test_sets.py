"""sacreBLEU's own test sets as references, read through sacreBLEU's dataset API from a cache
filled offline in sacreBLEU's layout (tests/evaluation/sacrebleu_fixtures.py)."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import pytest

from seq2seq.data.corpus import DataError
from seq2seq.evaluation.bleu import corpus_scores
from seq2seq.evaluation.testsets import load_test_set, sacrebleu_dir
from tests.evaluation.sacrebleu_fixtures import DE, EN, HYPS, sacrebleu_cli, write_wmt14_cache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = write_wmt14_cache(tmp_path / "sacrebleu")
    monkeypatch.setenv("SACREBLEU", str(root))
    return root


def test_wmt14_comes_through_sacrebleus_api_and_scores_as_its_cli(cache, tmp_path):
    assert sacrebleu_dir() == cache
    test_set = load_test_set("wmt14", "en-de")
    assert (test_set.name, test_set.langpair, test_set.label) == (
        "wmt14",
        "en-de",
        "sacrebleu:wmt14:en-de",
    )
    assert test_set.sources == EN and test_set.references == [DE]
    # sacreBLEU itself extracted the SGML into its processed files (no parser of ours)
    processed = cache / "wmt14" / "wmt14.en-de.ref"
    assert processed.read_text(encoding="utf-8").splitlines() == DE
    assert (cache / "wmt14" / "wmt14.en-de.src").is_file()

    hyp = tmp_path / "hyp.de"
    hyp.write_text("".join(h + "\n" for h in HYPS["en-de"]), encoding="utf-8")
    env = dict(os.environ, SACREBLEU=str(cache))
    for tokenize in ("13a", "intl"):
        ours = corpus_scores(
            HYPS["en-de"],
            test_set.references[0],
            tokenize=tokenize,
            test_set="wmt14",
            langpair="en-de",
        )
        out = sacrebleu_cli(
            "-t", "wmt14", "-l", "en-de", "-i", str(hyp), "-tok", tokenize, "-b", "-w", "4", env=env
        )
        assert abs(ours["bleu"] - float(out.stdout)) <= 0.005 + 5e-5, tokenize
        # the signature names the test set and pair, as sacreBLEU's -t/-l fields
        assert f"test:wmt14|lang:en-de|case:mixed|eff:no|tok:{tokenize}|" in ours["signature"]


def test_a_cache_of_processed_files_alone_is_enough(cache):
    import shutil

    assert load_test_set("wmt14", "de-en").references == [EN]
    shutil.rmtree(cache / "wmt14" / "raw")  # sacreBLEU reads its processed files, not the SGML
    test_set = load_test_set("wmt14", "de-en")
    assert test_set.sources == DE and test_set.references == [EN]


def test_no_network_and_no_cached_copy_is_one_line(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    monkeypatch.setenv("SACREBLEU", str(empty))
    calls = []

    def no_network(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(DataError) as err:
        load_test_set("wmt14", "en-de")
    line = str(err.value)
    assert calls == ["https://statmt.org/wmt14/test-filtered.tgz"]  # sacreBLEU's own download
    assert "\n" not in line
    assert line.startswith(
        "cannot load sacreBLEU test set wmt14 en-de (<urlopen error [Errno -3] Temporary "
        "failure in name resolution>): no network and no cached copy in "
        f"{empty / 'wmt14'}: run `sacrebleu -t wmt14 -l en-de --echo src` where there is network"
    )


def test_an_unknown_test_set_or_pair_is_one_line(cache):
    with pytest.raises(DataError, match=r"^sacreBLEU has no test set 'wmt99'; those with en-de: "):
        load_test_set("wmt99", "en-de")
    with pytest.raises(DataError) as err:
        load_test_set("wmt14", "en-xx")
    assert str(err.value).startswith("sacreBLEU's wmt14 has no pair en-xx; its pairs: cs-en, de-en")


def test_a_reference_file_that_does_not_match_its_sources_is_one_line(cache):
    load_test_set("wmt14", "en-de")
    ref = cache / "wmt14" / "wmt14.en-de.ref"
    ref.write_text("".join(line + "\n" for line in DE[:2]), encoding="utf-8")
    with pytest.raises(DataError, match=r"wmt14.en-de.ref has 2 lines but .*wmt14.en-de.src has 4"):
        load_test_set("wmt14", "en-de")
