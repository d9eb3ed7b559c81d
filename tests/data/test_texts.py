from __future__ import annotations

import datasets
import numpy as np
import pytest

from seq2seq.data.texts import PairTexts

SRC = [" Ein Mann. ", "", "Zwei Hunde.", "Eine Frau\t", " ", "Ein Kind."]
TGT = ["A man.", "Nothing.", " Two dogs.", "", "Blank.", "A child. "]


@pytest.fixture
def pairs() -> PairTexts:
    return PairTexts(datasets.Dataset.from_dict({"src": SRC, "tgt": TGT}))


@pytest.mark.parametrize("size", [1, 4, 100])
def test_chunks_give_the_stripped_lines_in_order(pairs, size):
    chunks = list(pairs.chunks(size=size))
    assert len(chunks) == -(-len(SRC) // size)
    assert [s for src, _ in chunks for s in src] == [s.strip() for s in SRC]
    assert [t for _, tgt in chunks for t in tgt] == [t.strip() for t in TGT]


def test_select_and_non_empty(pairs):
    kept = pairs.non_empty()
    assert kept.tolist() == [0, 2, 5]
    chosen = pairs.select(kept).select(np.array([2, 0]))  # positions within the selection
    assert chosen.lists() == (["Ein Kind.", "Ein Mann."], ["A child.", "A man."])
    assert len(chosen) == 2


def test_a_column_is_a_lazy_sequence(pairs):
    lines = pairs.select(np.array([5, 2, 0])).column("tgt")
    assert len(lines) == 3
    assert list(lines) == ["A child.", "Two dogs.", "A man."]
    assert lines[1] == "Two dogs." and lines[-1] == "A man."
    assert lines[:2] == ["A child.", "Two dogs."]
    with pytest.raises(IndexError):
        lines[3]
