from __future__ import annotations

import gzip
from pathlib import Path

import datasets
import pytest

from seq2seq.data.corpus import DataError, load_local, to_parallel
from seq2seq.data.source import load_corpus
from tests.conftest import MULTI30K, TATOEBA, needs_multi30k

MULTI30K_FILES = {"train": "train", "validation": "val", "test": "test_2016_flickr"}


def write_corpus(
    directory: Path, stem: str, lines: dict[str, list[str] | bytes], gz: bool = True
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for lang, content in lines.items():
        data = content if isinstance(content, bytes) else ("\n".join(content) + "\n").encode()
        path = directory / (f"{stem}.{lang}.gz" if gz else f"{stem}.{lang}")
        if gz:
            with gzip.open(path, "wb") as handle:
                handle.write(data)
        else:
            path.write_bytes(data)


@needs_multi30k
@pytest.mark.parametrize(("src", "tgt"), [("de", "en"), ("en", "fr")])
def test_multi30k_local_sizes(src, tgt, tmp_path):
    corpus = load_corpus(
        src=src,
        tgt=tgt,
        languages=["en", "de", "fr", "cs"],
        local_dir=MULTI30K,
        files=MULTI30K_FILES,
        cache_dir=str(tmp_path),
    )
    assert {split: len(corpus[split]) for split in corpus} == {
        "train": 29000,
        "validation": 1014,
        "test": 1000,
    }
    assert corpus["train"].column_names == ["src", "tgt"]
    first = corpus["train"][0]
    if src == "de":
        assert first["src"].startswith("Zwei junge weiße Männer")
        assert first["tgt"].startswith("Two young, White males")


@pytest.mark.skipif(TATOEBA is None, reason="local Tatoeba copy not found")
def test_tatoeba_local_sizes(tmp_path):
    corpus = load_corpus(
        src="en",
        tgt="fr",
        languages=["en", "fr"],
        local_dir=TATOEBA,
        files={"train": "train", "validation": "valid", "test": "test"},
        cache_dir=str(tmp_path),
    )
    assert {split: len(corpus[split]) for split in corpus} == {
        "train": 132827,
        "validation": 5029,
        "test": 4931,
    }


def test_hub_layout_one_column_per_language():
    raw = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"en": ["a b", "c"], "de": ["x y", "z"]}),
            "validation": datasets.Dataset.from_dict({"en": ["v"], "de": ["w"]}),
        }
    )
    out = to_parallel(
        raw, src="de", tgt="en", split_names={"train": "train", "validation": "validation"}
    )
    assert out["train"]["src"][:] == ["x y", "z"]
    assert out["train"]["tgt"][:] == ["a b", "c"]
    assert out["validation"].column_names == ["src", "tgt"]


def test_hub_layout_translation_column():
    raw = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"translation": [{"de": "Hallo", "en": "Hello"}, {"de": "Ja", "en": "Yes"}]}
            )
        }
    )
    out = to_parallel(raw, src="en", tgt="de", split_names={"train": "train"})
    assert out["train"][:] == {"src": ["Hello", "Yes"], "tgt": ["Hallo", "Ja"]}


def test_hub_layout_missing_language_and_split():
    raw = datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"translation": [{"de": "Hallo", "en": "Hello"}]})}
    )
    with pytest.raises(
        DataError,
        match=r"the train split: language 'fr' is not a column; the columns: translation.de, "
        r"translation.en \(name the tgt column with data.columns.tgt=COLUMN\)",
    ):
        to_parallel(raw, src="en", tgt="fr", split_names={"train": "train"})
    with pytest.raises(DataError, match="split 'validation' .* not found; the dataset has train"):
        to_parallel(
            raw, src="en", tgt="de", split_names={"train": "train", "validation": "validation"}
        )


def test_local_plain_and_gz_files_with_empty_lines(tmp_path):
    write_corpus(
        tmp_path, "train", {"en": ["one", "", "three"], "de": ["eins", "zwei", "drei"]}, gz=False
    )
    write_corpus(tmp_path, "dev", {"en": ["a"], "de": ["b"]}, gz=True)
    out = load_local(
        tmp_path,
        src="de",
        tgt="en",
        files={"train": "train", "validation": "dev"},
        cache_dir=str(tmp_path / "c"),
    )
    assert out["train"]["en"][:] == ["one", "", "three"]  # empty lines are kept, in place
    assert out["validation"]["de"][:] == ["b"]


def test_missing_directory_and_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_local(tmp_path / "nope", src="de", tgt="en", files={"train": "train"})
    write_corpus(tmp_path, "train", {"en": ["a"]})
    with pytest.raises(DataError, match=r"missing corpus file: neither .*train\.de"):
        load_local(tmp_path, src="de", tgt="en", files={"train": "train"})


def test_line_count_mismatch_names_both_files(tmp_path):
    write_corpus(tmp_path, "train", {"en": ["a", "b", "c"], "de": ["x", "y"]})
    with pytest.raises(DataError, match=r"train\.de\.gz has 2 lines, .*train\.en\.gz has 3"):
        load_local(tmp_path, src="de", tgt="en", files={"train": "train"})


def test_non_utf8_names_file_and_line(tmp_path):
    write_corpus(tmp_path, "train", {"en": ["a", "b", "c"], "de": b"x\ny\n\xff\xfez\n"})
    with pytest.raises(DataError, match=r"train\.de\.gz line 3: bytes that are not UTF-8"):
        load_local(tmp_path, src="de", tgt="en", files={"train": "train"})


def test_empty_corpus(tmp_path):
    write_corpus(tmp_path, "train", {"en": b"", "de": b""})
    with pytest.raises(DataError, match="empty corpus"):
        load_local(tmp_path, src="de", tgt="en", files={"train": "train"})


def test_unknown_language_split_and_same_language(tmp_path):
    with pytest.raises(
        DataError, match="data.tgt='xx' is not a language of multi30k; valid: en, de, fr, cs"
    ):
        load_corpus(
            src="de",
            tgt="xx",
            languages=["en", "de", "fr", "cs"],
            name="multi30k",
            local_dir=str(tmp_path),
            files={"train": "t"},
        )
    with pytest.raises(DataError, match="both 'de'"):
        load_corpus(
            src="de", tgt="de", languages=["de"], local_dir=str(tmp_path), files={"train": "t"}
        )
    with pytest.raises(DataError, match="unknown split 'dev'"):
        load_local(tmp_path, src="de", tgt="en", files={"dev": "t"})


def test_no_source_configured():
    with pytest.raises(DataError, match="set data.dir=PATH"):
        load_corpus(src="de", tgt="en")
