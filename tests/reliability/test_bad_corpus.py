"""Bad corpora under ``data.dir=``: seq2seq-train gives one ``error:`` line and exit code 1.

Each test writes a small de/en corpus in multi30k's layout (train / val / test_2016_flickr),
breaks it in one way, and runs seq2seq-train's ``main()`` in this process.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.cli.runner import assert_one_error_line, run_main
from tests.conftest import tiny_overrides
from tests.reliability.reliability_tools import write_corpus


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "corpus")


def train_on(corpus_dir, shared_cache, run_dir, capfd, monkeypatch, *extra):
    argv = tiny_overrides(
        shared_cache, f"data.dir={corpus_dir}", f"hydra.run.dir={run_dir}", *extra
    )
    return run_main("train", argv, capfd, monkeypatch)


def test_missing_directory(tmp_path, shared_cache, capfd, monkeypatch):
    missing = tmp_path / "nope"
    result = train_on(missing, shared_cache, tmp_path / "run", capfd, monkeypatch)
    assert_one_error_line(result, f"data directory {missing} does not exist (set data.dir=PATH)")


def test_missing_file(corpus, tmp_path, shared_cache, capfd, monkeypatch):
    (corpus / "val.en").unlink()
    result = train_on(corpus, shared_cache, tmp_path / "run", capfd, monkeypatch)
    assert_one_error_line(
        result,
        f"missing corpus file: neither {corpus / 'val.en'} nor its .gz exists "
        "(set data.dir to the directory holding the raw files)",
    )


def test_a_language_the_local_copy_lacks(corpus, tmp_path, shared_cache, capfd, monkeypatch):
    """fr is a multi30k language, but this copy has only de and en files."""
    result = train_on(corpus, shared_cache, tmp_path / "run", capfd, monkeypatch, "data.tgt=fr")
    assert_one_error_line(
        result,
        f"missing corpus file: neither {corpus / 'train.fr'} nor its .gz exists "
        "(set data.dir to the directory holding the raw files)",
    )


def test_mismatched_line_counts(corpus, tmp_path, shared_cache, capfd, monkeypatch):
    lines = (corpus / "train.en").read_text(encoding="utf-8").splitlines()
    (corpus / "train.en").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    result = train_on(corpus, shared_cache, tmp_path / "run", capfd, monkeypatch)
    assert_one_error_line(
        result,
        f"line counts differ: {corpus / 'train.de'} has 60 lines, {corpus / 'train.en'} has 59; "
        "line i of one must translate line i of the other",
    )


def test_empty_files(corpus, tmp_path, shared_cache, capfd, monkeypatch):
    for lang in ("de", "en"):
        (corpus / f"test_2016_flickr.{lang}").write_bytes(b"")
    result = train_on(corpus, shared_cache, tmp_path / "run", capfd, monkeypatch)
    assert_one_error_line(
        result,
        f"empty corpus: {corpus / 'test_2016_flickr.de'} and {corpus / 'test_2016_flickr.en'} "
        "have no lines",
    )


def test_only_empty_lines(corpus, tmp_path, shared_cache, capfd, monkeypatch):
    for lang in ("de", "en"):
        (corpus / f"train.{lang}").write_text("\n" * 60, encoding="utf-8")
    result = train_on(corpus, shared_cache, tmp_path / "run", capfd, monkeypatch)
    assert_one_error_line(result, "empty corpus: every training pair has an empty side")


def test_non_utf8_bytes(corpus, tmp_path, shared_cache, capfd, monkeypatch):
    data = (corpus / "val.de").read_bytes().split(b"\n")
    data[2] = b"Ein Mann \xff\xfe f\xe4hrt."  # latin-1 bytes in a UTF-8 file
    (corpus / "val.de").write_bytes(b"\n".join(data))
    result = train_on(corpus, shared_cache, tmp_path / "run", capfd, monkeypatch)
    assert_one_error_line(
        result,
        f"{corpus / 'val.de'} line 3: bytes that are not UTF-8 (b'\\xff\\xfe f'); "
        "re-encode the file as UTF-8",
    )


def test_vocabulary_too_large_suggests_a_size_that_works(
    corpus, tmp_path, shared_cache, capfd, monkeypatch
):
    result = train_on(
        corpus, shared_cache, tmp_path / "run", capfd, monkeypatch, "data.vocab.size=2000"
    )
    assert_one_error_line(
        result,
        "sentencepiece vocabulary size 2000 is too large for this corpus; use data.vocab.size=",
        prefix=True,
    )
    suggested = int(re.search(r"data\.vocab\.size=(\d+) or less", result.error_lines[0])[1])
    assert 8 <= suggested < 2000
    # the advice works: the same run with the suggested size trains
    again = train_on(
        corpus,
        shared_cache,
        tmp_path / "run2",
        capfd,
        monkeypatch,
        f"data.vocab.size={suggested}",
        "trainer.max_steps=2",
        "trainer.val_every=2",
    )
    assert again.code == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / "run2" / "metrics.json").read_text())["steps"] == 2


def test_max_len_that_drops_every_pair(corpus, tmp_path, shared_cache, capfd, monkeypatch):
    result = train_on(corpus, shared_cache, tmp_path / "run", capfd, monkeypatch, "data.max_len=2")
    assert_one_error_line(
        result, "every training pair is longer than data.max_len=2 subwords; raise data.max_len"
    )
