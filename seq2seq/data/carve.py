"""Validation and test splits cut out of train, for corpora that ship a train split only."""

from __future__ import annotations

import logging

import datasets
import numpy as np

from .corpus import DataError

log = logging.getLogger(__name__)

CARVABLE = ("validation", "test")


def carve_indices(n: int, sizes: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    """Disjoint sorted row indices of ``range(n)``: ``sizes[split]`` for each carved split, the
    rest for ``train``.

    The choice is a permutation from ``numpy.random.RandomState(seed)``, whose stream NumPy
    keeps fixed across releases (NEP 19), so a seed names the same split on every machine and
    version; each part keeps the corpus order.
    """
    order = np.random.RandomState(seed).permutation(n)
    parts, start = {}, 0
    for split, size in sizes.items():
        parts[split] = np.sort(order[start : start + size])
        start += size
    parts["train"] = np.sort(order[start:])
    return parts


def carve(
    corpus: datasets.DatasetDict, *, validation: int = 0, test: int = 0, seed: int = 1
) -> datasets.DatasetDict:
    """``corpus`` with ``validation`` / ``test`` pairs cut out of its train split (0: not cut).

    Raises:
        DataError: a negative size, no train split, or sizes that leave train empty.
    """
    sizes = {split: size for split, size in (("validation", validation), ("test", test)) if size}
    for split, size in sizes.items():
        if size < 0:
            raise DataError(f"data.carve.{split} must be >= 0 pairs, got {size}")
    if not sizes:
        return corpus
    if "train" not in corpus:
        raise DataError("data.carve cuts from the train split, but the corpus has none")
    train = corpus["train"]
    if sum(sizes.values()) >= len(train):
        asked = " + ".join(f"{size} ({split})" for split, size in sizes.items())
        raise DataError(
            f"data.carve asks for {asked} pairs but train has only {len(train)}: "
            "lower data.carve.validation / data.carve.test"
        )
    parts = carve_indices(len(train), sizes, seed)
    out = dict(corpus)
    for split, indices in parts.items():
        out[split] = train.select(indices)
    carved = " and ".join(f"{split} ({len(parts[split])} pairs)" for split in sizes)
    log.info("carved %s from train with seed %d; train keeps %d", carved, seed, len(parts["train"]))
    return datasets.DatasetDict(
        {split: out[split] for split in ("train", *CARVABLE) if split in out}
    )
