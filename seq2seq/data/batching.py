"""Token-bucketed batches: little padding, deterministic per seed and epoch, each pair once.

Sentences are sorted by length (ties broken by a seeded shuffle, so equal-length sentences mix
across epochs), cut greedily into batches whose *padded* size (rows x longest row) stays within
``max_tokens`` on the source side and on the target side, and the batch order is shuffled per
epoch. Sharding for distributed training gives every rank a disjoint, equally long share.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from .token_store import FlatIds
from .vocab import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Batch:
    """Padded id tensors with lengths and boolean masks (True = real token)."""

    src: Tensor  # (batch, src_len) ids, EOS-terminated, PAD after
    src_mask: Tensor  # (batch, src_len) bool
    src_lengths: Tensor  # (batch,)
    tgt_in: Tensor  # (batch, tgt_len) BOS + target ids
    tgt_out: Tensor  # (batch, tgt_len) target ids + EOS
    tgt_mask: Tensor  # (batch, tgt_len) bool
    indices: Tensor  # (batch,) positions of the pairs in their split

    @property
    def num_tgt_tokens(self) -> int:
        """Real (non-pad) target tokens, EOS included: the unit of throughput."""
        return int(self.tgt_mask.sum())

    def __len__(self) -> int:
        return self.src.size(0)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return Batch(
            **{
                f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
                for f in fields(self)
            }
        )


def pad_sequences(
    sequences: Sequence[Sequence[int]], pad_id: int = PAD_ID
) -> tuple[Tensor, Tensor]:
    """Right-pad id lists -> ((batch, max_len) long ids, (batch,) lengths)."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    out = torch.full(
        (len(sequences), max((len(s) for s in sequences), default=1)), pad_id, dtype=torch.long
    )
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out, lengths


def sequence_lengths(sequences: Sequence[Sequence[int]] | FlatIds) -> np.ndarray:
    """(n,) int64 lengths: stored with :class:`FlatIds`, counted for lists."""
    if isinstance(sequences, FlatIds):
        return sequences.lengths.copy()
    return np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))


def collate(
    src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]], indices: Sequence[int]
) -> Batch:
    """Build a :class:`Batch`; source ids already end with EOS, target ids have no BOS/EOS."""
    src, src_lengths = pad_sequences(src_ids)
    tgt_in, tgt_lengths = pad_sequences([[BOS_ID, *t] for t in tgt_ids])
    tgt_out, _ = pad_sequences([[*t, EOS_ID] for t in tgt_ids])
    return Batch(
        src=src,
        src_mask=src != PAD_ID,
        src_lengths=src_lengths,
        tgt_in=tgt_in,
        tgt_out=tgt_out,
        tgt_mask=torch.arange(tgt_in.size(1))[None, :] < tgt_lengths[:, None],
        indices=torch.as_tensor(indices, dtype=torch.long),
    )


def token_batches(
    src_lengths: Sequence[int] | np.ndarray,
    tgt_lengths: Sequence[int] | np.ndarray,
    *,
    max_tokens: int,
    seed: int = 0,
    shuffle: bool = True,
) -> list[np.ndarray]:
    """Group example indices into batches of at most ``max_tokens`` padded tokens per side.

    Returns the batches in a fixed order (sorted by length); :class:`BatchPlan` shuffles them.
    A single example longer than ``max_tokens`` still gets a batch of its own. The cut is
    greedy: a batch grows while (rows x its longest row) fits on both sides.
    """
    if max_tokens < 1:
        raise ValueError(f"data.max_tokens must be positive, got {max_tokens}")
    src_lengths = np.asarray(src_lengths, dtype=np.int64)
    tgt_lengths = np.asarray(tgt_lengths, dtype=np.int64)
    if src_lengths.shape != tgt_lengths.shape:
        raise ValueError(f"{len(src_lengths)} source lengths but {len(tgt_lengths)} target lengths")
    order = (
        np.random.default_rng(seed).permutation(len(src_lengths))
        if shuffle
        else np.arange(len(src_lengths))
    )
    # Sort by target then source length; the seeded permutation breaks ties (stable sort).
    order = order[_length_order(src_lengths[order], tgt_lengths[order])]
    src_sorted, tgt_sorted = src_lengths[order], tgt_lengths[order]
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        end = _batch_end(src_sorted, tgt_sorted, start, max_tokens)
        batches.append(order[start:end])
        start = end
    return batches


def _length_order(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """``np.lexsort((src, tgt))``, faster: a stable argsort of one key, tgt x width + src,
    which numpy radix-sorts in linear time when it fits 16 bits (lengths up to ~250)."""
    if not len(src):
        return np.zeros(0, dtype=np.int64)
    key = tgt * (int(src.max()) + 1) + src
    if int(key.max()) < 1 << 16:
        key = key.astype(np.uint16)
    return np.argsort(key, kind="stable")


def _batch_end(src: np.ndarray, tgt: np.ndarray, start: int, max_tokens: int) -> int:
    """End of the greedy batch from ``start``: the first row whose addition would make
    rows x running maximum exceed ``max_tokens`` on either side (at least one row), scanned
    a window at a time (vectorised: the cost is per batch, not per example)."""
    # a batch of rows holds at most max_tokens // (its first row's length) of them
    window = max_tokens // max(1, int(src[start]), int(tgt[start])) + 2
    max_src = max_tgt = 0
    pos = start
    while pos < len(src):
        stop = min(pos + window, len(src))
        run_src = np.maximum.accumulate(np.maximum(src[pos:stop], max_src))
        run_tgt = np.maximum.accumulate(np.maximum(tgt[pos:stop], max_tgt))
        rows = np.arange(pos - start + 1, stop - start + 1)
        over = (rows > 1) & ((rows * run_src > max_tokens) | (rows * run_tgt > max_tokens))
        if over.any():
            return pos + int(over.argmax())
        max_src, max_tgt, pos = int(run_src[-1]), int(run_tgt[-1]), stop
    return len(src)


class BatchPlan:
    """Per-epoch batch order over a tokenized split.

    ``epoch(e)`` is deterministic for (seed, e): the same seed gives the same batches in the same
    order; every example appears exactly once per epoch (before sharding). With ``num_shards`` > 1,
    rank ``shard_id`` takes every ``num_shards``-th batch; the list is first cut to a multiple of
    ``num_shards`` so all ranks take the same number of steps (DDP needs that), which leaves out at
    most ``num_shards - 1`` batches per epoch — different ones each epoch.

    Batches are planned from the sequence lengths alone (``ids.lengths`` of
    :class:`~.token_store.FlatIds`, without reading a token); a batch reads its own rows when it
    is collated, so each rank touches only the tokens of its shard.
    """

    def __init__(
        self,
        src_ids: Sequence[Sequence[int]],
        tgt_ids: Sequence[Sequence[int]],
        *,
        max_tokens: int,
        seed: int = 0,
        shuffle: bool = True,
        num_shards: int = 1,
        shard_id: int = 0,
    ) -> None:
        if max_tokens < 1:
            raise ValueError(f"data.max_tokens must be positive, got {max_tokens}")
        if not 0 <= shard_id < num_shards:
            raise ValueError(f"shard_id {shard_id} out of range for {num_shards} shards")
        self.src_ids, self.tgt_ids = src_ids, tgt_ids
        self.max_tokens, self.seed, self.shuffle = max_tokens, seed, shuffle
        self.num_shards, self.shard_id = num_shards, shard_id
        self.src_lengths = sequence_lengths(src_ids)
        self.tgt_lengths = sequence_lengths(tgt_ids) + 1  # BOS/EOS are added at collate time
        self._fixed = None if shuffle else self._batches(0)
        self._last: tuple[int, list[np.ndarray]] | None = None  # the epoch planned last

    def _batches(self, epoch: int) -> list[np.ndarray]:
        batches = token_batches(
            self.src_lengths,
            self.tgt_lengths,
            max_tokens=self.max_tokens,
            seed=self.seed * 100_003 + epoch,
            shuffle=self.shuffle,
        )
        if self.shuffle:
            rng = np.random.default_rng(self.seed * 100_003 + epoch + 1)
            batches = [batches[i] for i in rng.permutation(len(batches))]
        if self.num_shards > 1:
            usable = len(batches) - len(batches) % self.num_shards
            batches = batches[self.shard_id : usable : self.num_shards]
        return batches

    def epoch_indices(self, epoch: int) -> list[np.ndarray]:
        """The index arrays of the batches of ``epoch``, in order."""
        if self._fixed is not None:
            return self._fixed
        if self._last is None or self._last[0] != epoch:
            self._last = (epoch, self._batches(epoch))
        return self._last[1]

    def num_batches(self, epoch: int = 0) -> int:
        return len(self.epoch_indices(epoch))

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """Yield the collated batches of ``epoch``, skipping the first ``start`` (resume)."""
        for indices in self.epoch_indices(epoch)[start:]:
            yield collate(
                [self.src_ids[i] for i in indices],
                [self.tgt_ids[i] for i in indices],
                indices.tolist(),
            )

    def padding_fraction(self, epoch: int = 0) -> float:
        """Fraction of padded positions over both sides of all batches of ``epoch``."""
        real = padded = 0
        for indices in self.epoch_indices(epoch):
            for lengths in (self.src_lengths[indices], self.tgt_lengths[indices]):
                real += int(lengths.sum())
                padded += int(lengths.max()) * len(indices)
        return 1.0 - real / padded
