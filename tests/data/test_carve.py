from __future__ import annotations

import logging

import datasets
import numpy as np
import pytest

from seq2seq.data.carve import carve, carve_indices
from seq2seq.data.corpus import DataError


def corpus_of(n: int) -> datasets.DatasetDict:
    return datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"src": [f"s{i}" for i in range(n)], "tgt": [f"t{i}" for i in range(n)]}
            )
        }
    )


def test_parts_are_disjoint_sorted_and_cover_train():
    parts = carve_indices(50, {"validation": 7, "test": 5}, seed=3)
    assert [len(parts[s]) for s in ("validation", "test", "train")] == [7, 5, 38]
    joined = np.concatenate(list(parts.values()))
    assert sorted(joined.tolist()) == list(range(50))  # disjoint, nothing lost
    for indices in parts.values():
        assert np.all(np.diff(indices) > 0)  # each part keeps the corpus order


def test_same_seed_same_split_other_seed_other_split():
    sizes = {"validation": 10, "test": 10}
    first, again = carve_indices(200, sizes, seed=1), carve_indices(200, sizes, seed=1)
    other = carve_indices(200, sizes, seed=2)
    for split in ("validation", "test", "train"):
        assert np.array_equal(first[split], again[split])
    assert not np.array_equal(first["test"], other["test"])


def test_the_seed_names_the_same_split_on_every_numpy():
    """RandomState's stream is frozen (NEP 19): a carved test set never changes under a seed,
    so results on it stay comparable (default_rng gives no such promise)."""
    parts = carve_indices(10, {"validation": 2, "test": 3}, seed=1)
    assert parts["validation"].tolist() == [2, 9]
    assert parts["test"].tolist() == [0, 4, 6]  # RandomState(1).permutation(10): 2 9 6 4 0 ...


def test_carve_cuts_rows_and_logs_the_sizes(caplog):
    with caplog.at_level(logging.INFO, logger="seq2seq.data.carve"):
        out = carve(corpus_of(30), validation=4, test=6, seed=5)
    assert {s: len(out[s]) for s in out} == {"train": 20, "validation": 4, "test": 6}
    assert list(out) == ["train", "validation", "test"]
    rows = [(r["src"], r["tgt"]) for s in out for r in out[s]]
    assert sorted(rows) == sorted((f"s{i}", f"t{i}") for i in range(30))  # pairs stay pairs
    assert (
        "carved validation (4 pairs) and test (6 pairs) from train with seed 5; train keeps 20"
        in caplog.messages
    )


def test_carve_one_split_and_nothing():
    only_test = carve(corpus_of(10), test=3)
    assert {s: len(only_test[s]) for s in only_test} == {"train": 7, "test": 3}
    unchanged = corpus_of(10)
    assert carve(unchanged) is unchanged


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        (
            {"validation": 5, "test": 5},
            r"data.carve asks for 5 \(validation\) \+ 5 \(test\) pairs but train has only 10",
        ),
        ({"validation": -1}, r"data.carve.validation must be >= 0 pairs, got -1"),
    ],
)
def test_impossible_carves(sizes, message):
    with pytest.raises(DataError, match=message):
        carve(corpus_of(10), **sizes)
