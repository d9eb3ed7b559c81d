"""Local copies as TSV, JSON lines and parquet (data.format), through the same to_parallel and
carving as the hub."""

from __future__ import annotations

import gzip
import json

import datasets
import pytest

from seq2seq.data.corpus import DataError
from seq2seq.data.source import load_corpus


def write_tsv(path, lines: list[str], gz: bool = False) -> None:
    data = ("\n".join(lines) + "\n").encode()
    if gz:
        with gzip.open(path, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)


def load(directory, fmt, files, cache, **kw):
    return load_corpus(local_dir=str(directory), fmt=fmt, files=files, cache_dir=str(cache), **kw)


def test_tsv_columns_are_named_by_languages_in_file_order(tmp_path):
    write_tsv(tmp_path / "train.tsv", ['a "quoted\' one\tein "Zitat', "NA\tnull", "1\t2"])
    write_tsv(tmp_path / "dev.tsv.gz", ["x\ty"], gz=True)
    files = {"train": "train", "validation": "dev"}
    out = load(tmp_path, "tsv", files, tmp_path / "c", src="de", tgt="en", languages=["en", "de"])
    # quotes, "NA" and digits stay text, exactly as written
    assert out["train"][:] == {
        "src": ['ein "Zitat', "null", "2"],
        "tgt": ["a \"quoted' one", "NA", "1"],
    }
    assert out["validation"][:] == {"src": ["y"], "tgt": ["x"]}
    forward = load(tmp_path, "tsv", {"train": "train"}, tmp_path / "c", src="en", tgt="de")
    assert forward["train"]["src"][:] == ["a \"quoted' one", "NA", "1"]  # default order [src, tgt]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ["a\tb", "only one side", "c\td"],
            r"train\.tsv line 2: 1 tab-separated fields, expected 2",
        ),
        (["a\tb\tc"], r"train\.tsv line 1: 3 tab-separated fields, expected 2 \(`en<TAB>de`\)"),
    ],
)
def test_tsv_line_without_exactly_one_tab(tmp_path, lines, message):
    write_tsv(tmp_path / "train.tsv", lines)
    with pytest.raises(DataError, match=message):
        load(tmp_path, "tsv", {"train": "train"}, tmp_path / "c", src="en", tgt="de")


def test_tsv_bad_bytes_empty_file_and_missing_file(tmp_path):
    (tmp_path / "train.tsv").write_bytes(b"a\tb\n\xff\tc\n")
    with pytest.raises(DataError, match=r"train\.tsv line 2: bytes that are not UTF-8"):
        load(tmp_path, "tsv", {"train": "train"}, tmp_path / "c", src="en", tgt="de")
    (tmp_path / "train.tsv").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty corpus: .*train\.tsv has no lines"):
        load(tmp_path, "tsv", {"train": "train"}, tmp_path / "c", src="en", tgt="de")
    with pytest.raises(DataError, match=r"none of dev\.tsv, dev\.tsv\.gz is in"):
        load(tmp_path, "tsv", {"train": "dev"}, tmp_path / "c", src="en", tgt="de")


def test_jsonl_flat_columns_struct_and_named_columns(tmp_path):
    flat = [{"en": "hello", "de": "hallo"}, {"en": "yes", "de": "ja"}]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in flat) + "\n")
    out = load(tmp_path, "json", {"train": "train"}, tmp_path / "c", src="de", tgt="en")
    assert out["train"][:] == {"src": ["hallo", "ja"], "tgt": ["hello", "yes"]}

    nested = tmp_path / "nested"
    nested.mkdir()
    with gzip.open(nested / "test.jsonl.gz", "wt") as handle:
        handle.write(json.dumps({"id": "7", "translation": {"en": "no", "de": "nein"}}) + "\n")
    out = load(nested, "json", {"test": "test"}, tmp_path / "c", src="de", tgt="en")
    assert out["test"][:] == {"src": ["nein"], "tgt": ["no"]}

    (tmp_path / "named.jsonl").write_text(
        json.dumps({"source": "a", "target": "b", "score": 0.5}) + "\n"
    )

    def named(columns):
        return load(
            tmp_path, "json", {"train": "named"}, tmp_path / "c", src="x", tgt="y", columns=columns
        )

    assert named({"src": "source", "tgt": "target"})["train"][:] == {"src": ["a"], "tgt": ["b"]}
    with pytest.raises(
        DataError,
        match=r"the train split: data.columns.src='sorce' is not a column; the columns: score, "
        "source, target",
    ):
        named({"src": "sorce", "tgt": "target"})
    with pytest.raises(DataError, match=r"the train split: language 'y' is not a column"):
        named({"src": "source"})
    with pytest.raises(DataError, match=r"the train split's tgt column 'score' holds Value\("):
        named({"src": "source", "tgt": "score"})


def test_malformed_json_is_one_line(tmp_path, capfd):
    (tmp_path / "train.jsonl").write_text('{"en": "a", "de": "b"}\n{"en": \n')
    with pytest.raises(
        DataError, match=r"^cannot read json files in .*: ArrowInvalid: JSON parse error"
    ) as err:
        load(tmp_path, "json", {"train": "train"}, tmp_path / "c", src="de", tgt="en")
    assert "\n" not in str(err.value)
    assert "Failed to load JSON" not in capfd.readouterr().err  # datasets' own log line: off


def test_parquet_with_a_translation_struct_and_carving(tmp_path):
    n = 40
    pairs = [{"de": f"satz {i}", "en": f"sentence {i}"} for i in range(n)]
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "translation": datasets.Translation(languages=["de", "en"]),
        }
    )
    table = datasets.Dataset.from_dict(
        {"id": [str(i) for i in range(n)], "translation": pairs}, features=features
    )
    table.to_parquet(str(tmp_path / "all.parquet"))
    out = load(
        tmp_path,
        "parquet",
        {"train": "all", "validation": "all"},  # validation is carved: its file is not read
        tmp_path / "c",
        src="en",
        tgt="de",
        carve_sizes={"validation": 5, "test": 5},
        carve_seed=2,
    )
    assert {s: len(out[s]) for s in out} == {"train": 30, "validation": 5, "test": 5}
    seen = sorted(r["src"] for s in out for r in out[s])
    assert seen == sorted(p["en"] for p in pairs)
    assert all(r["tgt"] == r["src"].replace("sentence", "satz") for r in out["test"])
