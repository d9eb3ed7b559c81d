"""The data spec end to end: the presets load their hub fixtures through datasets.load_dataset
(a mirror of the hub repos in their hub layouts), carving, the precedence of data.dir and
data.hub_id, and the one-line errors of a failed load."""

from __future__ import annotations

import logging

import datasets
import pytest

from seq2seq.config import default_data_dir
from seq2seq.data.corpus import DataError
from seq2seq.data.source import load_configured
from tests.cli.runner import assert_one_error_line, run_main
from tests.conftest import compose_config, tiny_overrides
from tests.fixtures.hub_mirror import expected
from tests.reliability.reliability_tools import write_corpus

# preset -> (hub id, config in the fixture, the mirror directory it is read from)
PRESETS = {
    "wmt14_en_de": ("wmt/wmt14", "de-en", "wmt/wmt14"),
    "wmt16_en_de": ("wmt/wmt16", "de-en", "wmt/wmt16"),
    "iwslt2017_de_en": (
        "IWSLT/iwslt2017",
        "iwslt2017-de-en",
        "IWSLT/iwslt2017@refs/convert/parquet",
    ),
}


def load(*overrides: str, cache) -> datasets.DatasetDict:
    cfg = compose_config(*overrides)
    return load_configured(cfg.data, cache_dir=str(cache))


def pairs_of(split: datasets.Dataset) -> list[tuple[str, str]]:
    return list(zip(split["src"], split["tgt"], strict=True))


def fixture_pairs(hub_id: str, config: str, split: str, src: str, tgt: str):
    return [(row[src], row[tgt]) for row in expected(hub_id, config, split)]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_loads_its_hub_fixture(preset, hub_mirror, tmp_path, caplog):
    hub_id, config, directory = PRESETS[preset]
    cfg = compose_config(f"data={preset}", f"data.hub_mirror={hub_mirror}")
    assert cfg.data.dir is None and cfg.data.hub_id == hub_id
    with caplog.at_level(logging.INFO, logger="seq2seq.data"):
        corpus = load_configured(cfg.data, cache_dir=str(tmp_path))
    assert f"from {hub_mirror / directory}" in caplog.text
    src, tgt = cfg.data.src, cfg.data.tgt
    assert (src, tgt) == tuple(preset.split("_")[-2:])  # the direction the name says
    assert list(corpus) == ["train", "validation", "test"]
    for split in corpus:
        assert corpus[split].column_names == ["src", "tgt"]
        # every row, in order, of this config only (iwslt's export has en-de beside de-en)
        assert pairs_of(corpus[split]) == fixture_pairs(hub_id, config, split, src, tgt)


def test_train_only_dataset_is_carved(hub_mirror, tmp_path, caplog):
    overrides = [
        "data=opus_books_de_en",
        f"data.hub_mirror={hub_mirror}",
        "data.carve.validation=20",
        "data.carve.test=10",
    ]
    with caplog.at_level(logging.INFO, logger="seq2seq.data"):
        corpus = load(*overrides, cache=tmp_path / "a")
    assert {s: len(corpus[s]) for s in corpus} == {"train": 120, "validation": 20, "test": 10}
    assert (
        "carved validation (20 pairs) and test (10 pairs) from train with seed 1; train keeps 120"
        in caplog.messages
    )
    source = fixture_pairs("Helsinki-NLP/opus_books", "de-en", "train", "de", "en")
    # disjoint by row: the three splits are a partition of the source's rows
    assert sorted(p for s in corpus for p in pairs_of(corpus[s])) == sorted(source)
    again = load(*overrides, cache=tmp_path / "b")
    reseeded = load(*overrides, "data.carve.seed=2", cache=tmp_path / "c")
    assert pairs_of(again["test"]) == pairs_of(corpus["test"])
    assert pairs_of(reseeded["test"]) != pairs_of(corpus["test"])


def test_train_only_dataset_without_carving_says_how(hub_mirror, tmp_path):
    with pytest.raises(DataError) as err:
        load(
            *("data=opus_books_de_en", f"data.hub_mirror={hub_mirror}", "data.carve.validation=0"),
            cache=tmp_path,
        )
    assert str(err.value) == (
        "split 'validation' (for validation) not found; the dataset has train (map validation "
        "in data.hub_splits or data.files, or cut it from train with data.carve.validation=N)"
    )


def test_explicit_hub_id_beats_the_default_local_copy(hub_mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("SEQ2SEQ_DATA", str(tmp_path / "shared"))
    local = write_corpus(tmp_path / "shared" / "multi30k")  # the preset's default local copy
    mirror = f"data.hub_mirror={hub_mirror}"
    default = compose_config("data=multi30k", mirror)
    assert default.data.dir == str(local)
    local_train = pairs_of(load_configured(default.data, cache_dir=str(tmp_path))["train"])
    assert local_train[0] == ("Ein Mann fährt Fahrrad.", "A man rides a bike.")

    hub = compose_config("data=multi30k", "data.hub_id=wmt/wmt14", "data.hub_config=de-en", mirror)
    assert hub.data.dir is None  # the local copy stands for bentrevett/multi30k only
    corpus = load_configured(hub.data, cache_dir=str(tmp_path))
    assert pairs_of(corpus["train"]) == fixture_pairs("wmt/wmt14", "de-en", "train", "de", "en")
    assert set(pairs_of(corpus["train"])).isdisjoint(local_train)


def test_explicit_dir_and_hub_id_dir_wins_and_says_so(hub_mirror, tmp_path, caplog):
    local = write_corpus(tmp_path / "copy")
    with caplog.at_level(logging.INFO, logger="seq2seq.data"):
        corpus = load(
            *("data=wmt14_en_de", f"data.dir={local}", "data.files.validation=val"),
            "data.files.test=test_2016_flickr",
            cache=tmp_path / "c",
        )
    assert pairs_of(corpus["train"])[0] == ("A man rides a bike.", "Ein Mann fährt Fahrrad.")
    assert (
        f"data.dir and data.hub_id are both set: loading wmt14_en_de from the local files in "
        f"{local} (data.dir wins; data.dir=null loads wmt/wmt14)" in caplog.messages
    )


def test_local_corpus_resolver(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQ2SEQ_DATA", str(tmp_path))
    (tmp_path / "m").mkdir()
    assert default_data_dir("m") == str(tmp_path / "m")  # an old run's one-argument form
    assert default_data_dir("m", "own/id", "own/id") == str(tmp_path / "m")
    assert default_data_dir("m", None, "own/id") == str(tmp_path / "m")
    assert default_data_dir("m", "other/id", "own/id") is None
    assert default_data_dir("m", "other/id") is None  # a corpus with no hub copy


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data.hub_config=null"],
            "cannot load wmt/wmt14 from the mirror copy {mirror}/wmt/wmt14: ValueError: Config "
            "name is missing. Please pick one among the available configs: ['de-en', 'fr-en'] "
            "Example of usage: `load_dataset('wmt14', 'de-en')`; set data.hub_config to one of "
            "the dataset's configs",
        ),
        (
            ["data.hub_config=xx-en"],
            "cannot load wmt/wmt14 (config xx-en) from the mirror copy {mirror}/wmt/wmt14: "
            "ValueError: BuilderConfig 'xx-en' not found. Available: ['de-en', 'fr-en']; set "
            "data.hub_config to one of the dataset's configs",
        ),
        (
            ["data.hub_id=IWSLT/iwslt2017", "data.hub_config=iwslt2017-de-en"],
            "cannot load IWSLT/iwslt2017 (config iwslt2017-de-en) from the mirror copy "
            "{mirror}/IWSLT/iwslt2017: RuntimeError: Dataset scripts are no longer supported, "
            "but found iwslt2017.py; this is a loading-script dataset: load the hub's parquet "
            "export with data.revision=refs/convert/parquet and data.load_kwargs.data_dir=CONFIG",
        ),
        (
            [
                "data=iwslt2017_de_en",
                "data.hub_config=iwslt2017-de-en",
                "~data.load_kwargs.data_dir",
            ],
            "cannot load IWSLT/iwslt2017 (config iwslt2017-de-en, revision refs/convert/parquet) "
            "from the mirror copy {mirror}/IWSLT/iwslt2017@refs/convert/parquet: ValueError: "
            "BuilderConfig 'iwslt2017-de-en' not found. Available: ['default']; the parquet "
            "export has one directory per config and no configs list: set data.hub_config=null "
            "and data.load_kwargs.data_dir=CONFIG",
        ),
        (
            ["data.hub_id=wmt/wmt19"],
            "the hub mirror {mirror} has no copy of wmt/wmt19 (config de-en): expected the "
            "directory {mirror}/wmt/wmt19 (`hf download wmt/wmt19 --repo-type dataset "
            "--local-dir {mirror}/wmt/wmt19` puts it there), or unset data.hub_mirror / "
            "SEQ2SEQ_HUB_MIRROR to use the hub",
        ),
        (
            ["+data.load_kwargs.split=train"],
            "data.load_kwargs.split is not allowed: set data.hub_splits instead",
        ),
    ],
)
def test_failed_loads_are_one_line_with_datasets_message(
    overrides, message, hub_mirror, tmp_path, shared_cache, capfd, monkeypatch
):
    argv = [
        *tiny_overrides(shared_cache, "data=wmt14_en_de", f"data.hub_mirror={hub_mirror}"),
        *overrides,
    ]
    result = run_main("prepare", argv, capfd, monkeypatch)
    assert_one_error_line(result, message.format(mirror=hub_mirror))


def test_hub_unreachable_names_datasets_error_and_the_offline_options(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # no network, and fast
    # the probe passed (a network that fails later): datasets' own error, with the advice
    monkeypatch.setattr("seq2seq.data.hub.hub_unreachable", lambda *args, **kwargs: None)
    with pytest.raises(DataError) as err:
        load("data=wmt14_en_de", "data.hub_mirror=null", cache=tmp_path)
    assert str(err.value) == (
        "cannot load wmt/wmt14 (config de-en) from the Hugging Face hub: ConnectionError: "
        "Couldn't reach 'wmt/wmt14' on the Hub (OfflineModeIsEnabled); without network, set "
        "data.hub_mirror (or SEQ2SEQ_HUB_MIRROR) to a directory of hub repo copies, or data.dir "
        "to local files"
    )


def test_prepare_wmt14_preset_end_to_end(hub_mirror, tmp_path, capfd, monkeypatch):
    """seq2seq-prepare data=wmt14_en_de on the fixture: vocabulary, ids and the counts."""
    argv = [
        "data=wmt14_en_de",
        f"data.hub_mirror={hub_mirror}",
        f"data.cache_dir={tmp_path}",
        "data.vocab.size=60",
    ]
    result = run_main("prepare", argv, capfd, monkeypatch)
    assert result.code == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "corpus wmt14_en_de en->de from wmt/wmt14"
    counts = {line.split()[0]: int(line.split()[1]) for line in lines[1:4]}
    assert counts == {"train": 120, "validation": 12, "test": 15}


@pytest.mark.slow
def test_train_on_the_iwslt_preset(hub_mirror, tmp_path, shared_cache, capfd, monkeypatch):
    """A few steps of seq2seq-train data=iwslt2017_de_en on the fixture, scored on its test."""
    argv = tiny_overrides(
        shared_cache,
        "data=iwslt2017_de_en",
        f"data.hub_mirror={hub_mirror}",
        "data.vocab.size=60",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    result = run_main("train", argv, capfd, monkeypatch)
    assert result.code == 0, result.stderr[-2000:]
    hyps = (tmp_path / "run" / "hyps" / "test.txt").read_text(encoding="utf-8").splitlines()
    assert len(hyps) == 9  # one per test pair of the fixture's iwslt2017-de-en
