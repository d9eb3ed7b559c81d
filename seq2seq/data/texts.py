"""The stripped source and target lines of one split, read from its Arrow table in chunks.

A ``datasets`` split is a memory-mapped Arrow table: :class:`PairTexts` reads it a chunk at a
time (and ``rows`` picks and orders the pairs without copying the text), so hashing,
sentencepiece training and encoding a corpus of millions of pairs never hold all of its
lines as Python strings at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np

CHUNK_PAIRS = 100_000  # pairs read (and encoded) at a time: bounds memory on any corpus


class PairTexts:
    """Lines ``rows`` (default: all) of a split with columns ``src`` and ``tgt``, stripped."""

    def __init__(self, dataset, rows: np.ndarray | None = None) -> None:
        self.dataset = dataset.with_format("arrow")  # row access gives pyarrow tables
        self.rows = rows

    def __len__(self) -> int:
        return len(self.dataset) if self.rows is None else len(self.rows)

    def _table(self, start: int, stop: int):
        if self.rows is None:
            return self.dataset[start:stop]
        return self.dataset[self.rows[start:stop]]

    def chunks(
        self, columns: tuple[str, ...] = ("src", "tgt"), size: int | None = None
    ) -> Iterator[tuple[list[str], ...]]:
        """Stripped lines of ``columns``, ``size`` (default CHUNK_PAIRS) pairs at a time."""
        size = size or CHUNK_PAIRS
        for start in range(0, len(self), size):
            table = self._table(start, min(start + size, len(self)))
            yield tuple([s.strip() for s in table.column(c).to_pylist()] for c in columns)

    def select(self, rows: np.ndarray) -> PairTexts:
        """Pairs ``rows`` (positions in this selection), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return PairTexts(self.dataset, rows if self.rows is None else self.rows[rows])

    def non_empty(self) -> np.ndarray:
        """Positions of the pairs with text on both sides."""
        kept, start = [], 0
        for src, tgt in self.chunks():
            mask = np.fromiter(
                (bool(s and t) for s, t in zip(src, tgt, strict=True)), bool, len(src)
            )
            kept.append(np.flatnonzero(mask) + start)
            start += len(src)
        return np.concatenate([np.zeros(0, np.int64), *kept])

    def column(self, side: str) -> Lines:
        return Lines(self, side)

    def lists(self) -> tuple[list[str], list[str]]:
        """Both sides as lists (validation and test: the references scoring needs)."""
        return list(self.column("src")), list(self.column("tgt"))


class Lines(Sequence):
    """One side of :class:`PairTexts` as a read-only sequence of strings."""

    def __init__(self, pairs: PairTexts, side: str) -> None:
        self.pairs, self.side = pairs, side

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return [self[i] for i in range(*key.indices(len(self)))]
        if not -len(self) <= key < len(self):
            raise IndexError(f"line {key} of {len(self)}")
        key = int(key) % len(self)
        row = key if self.pairs.rows is None else int(self.pairs.rows[key])
        return self.pairs.dataset[row].column(self.side)[0].as_py().strip()

    def __iter__(self) -> Iterator[str]:
        return itertools.chain.from_iterable(
            lines for (lines,) in self.pairs.chunks(columns=(self.side,))
        )
