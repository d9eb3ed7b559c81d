"""The Transformer decoder's self-attention cache: one :class:`KVCache` per decoder layer.

Incremental decoding attends over the keys and values of every position decoded so far.
Concatenating one position per step would copy the whole cache at every step (measured: 14% of
a greedy step), so the cache is a preallocated buffer written in place, grown by
``CACHE_CHUNK`` positions when full. Beam search's and greedy search's row selection copies only
the filled positions, into the buffer the previous selection left behind: on CPU, writing into a
fresh 10 MB buffer costs more in page faults than the copy itself (measured 4x).

Both rules make a cache single-use: ``write`` changes it in place, and ``select`` hands its
buffers to the selected cache as the next spare. So a cache serves one next step (or one
selection), which is how decoding uses it (see ``Seq2Seq.decode_step``).

Shapes: R hypothesis rows, H heads, C capacity (positions allocated), dh head size.
"""

from __future__ import annotations

import torch
from torch import Tensor

CACHE_CHUNK = 16  # positions allocated at first, and added to a full cache


class KVCache:
    """Keys and values of positions 0 .. ``length - 1`` for every hypothesis row of one layer.

    ``keys``, ``values``: (R, H, C, dh) buffers, filled up to ``length``; positions at and past
    ``length`` hold garbage. Keys and values are separate tensors whose (length, dh) slices are
    contiguous, so no step copies them for a matmul.
    """

    __slots__ = ("keys", "values", "length", "_spare")

    def __init__(
        self,
        keys: Tensor,
        values: Tensor,
        length: int = 0,
        spare: tuple[Tensor, Tensor] | None = None,
    ) -> None:
        self.keys = keys  # (R, H, C, dh)
        self.values = values  # (R, H, C, dh)
        self.length = length
        # (R_old, H, C_old, dh) each: the buffers the previous selection left, reused by the next
        self._spare = spare

    @classmethod
    def empty(cls, rows: int, heads: int, head_dim: int, like: Tensor) -> KVCache:
        """An unfilled cache of CACHE_CHUNK positions with ``like``'s dtype and device."""
        shape = (rows, heads, CACHE_CHUNK, head_dim)
        return cls(like.new_empty(shape), like.new_empty(shape))

    @property
    def capacity(self) -> int:
        return self.keys.shape[2]

    def write(self, position: int, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Store key, value (R, H, dh) at ``position`` in place (at most ``length``: writing the
        last position again overwrites it), growing the buffers by CACHE_CHUNK when full
        -> keys, values (R, H, position + 1, dh): views of every position so far."""
        if position > self.length:
            raise ValueError(f"cache holds {self.length} positions; cannot write {position}")
        if position >= self.capacity:
            self.keys, self.values = _grow(self.keys, position), _grow(self.values, position)
        self.keys[:, :, position] = key
        self.values[:, :, position] = value
        self.length = position + 1
        return self.keys[:, :, : self.length], self.values[:, :, : self.length]

    def select(self, rows: Tensor) -> KVCache:
        """The cache of ``rows`` (R',) (reordered, repeated or dropped rows) -> (R', H, C, dh).

        Only the filled positions are copied, into the spare buffers (reallocated when too few
        rows or another capacity); this cache's buffers become the new cache's spare, so this
        cache must not be used again. Under autograd (``out=`` cannot record it) the whole
        buffers are selected into new tensors instead, and no spare is kept.
        """
        if self.keys.requires_grad and torch.is_grad_enabled():
            keys, values = self.keys.index_select(0, rows), self.values.index_select(0, rows)
            return KVCache(keys, values, self.length)
        count = rows.numel()
        spare = self._spare
        if spare is None or spare[0].shape[0] < count or spare[0].shape[1:] != self.keys.shape[1:]:
            shape = (count, *self.keys.shape[1:])
            spare = (self.keys.new_empty(shape), self.values.new_empty(shape))
        keys, values = spare[0][:count], spare[1][:count]  # contiguous leading rows
        filled = slice(0, self.length)
        torch.index_select(self.keys[:, :, filled], 0, rows, out=keys[:, :, filled])
        torch.index_select(self.values[:, :, filled], 0, rows, out=values[:, :, filled])
        return KVCache(keys, values, self.length, spare=(self.keys, self.values))


def _grow(buffer: Tensor, filled: int) -> Tensor:
    """(R, H, C, dh) with ``filled`` positions -> (R, H, C + CACHE_CHUNK, dh), same contents."""
    rows, heads, capacity, head_dim = buffer.shape
    grown = buffer.new_empty(rows, heads, capacity + CACHE_CHUNK, head_dim)
    grown[:, :, :filled] = buffer[:, :, :filled]
    return grown
