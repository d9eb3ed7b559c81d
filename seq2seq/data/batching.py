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
    A single example longer than ``max_tokens`` still gets a batch of its own.
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
    order = order[np.lexsort((src_lengths[order], tgt_lengths[order]))]
    batches: list[np.ndarray] = []
    start, max_src, max_tgt = 0, 0, 0
    for pos, idx in enumerate(order):
        new_src = max(max_src, src_lengths[idx])
        new_tgt = max(max_tgt, tgt_lengths[idx])
        rows = pos - start + 1
        if rows > 1 and (rows * new_src > max_tokens or rows * new_tgt > max_tokens):
            batches.append(order[start:pos])
            start, new_src, new_tgt = pos, src_lengths[idx], tgt_lengths[idx]
        max_src, max_tgt = new_src, new_tgt
    if start < len(order):
        batches.append(order[start:])
    return batches


class BatchPlan:
    """Per-epoch batch order over a tokenized split.

    ``epoch(e)`` is deterministic for (seed, e): the same seed gives the same batches in the same
    order; every example appears exactly once per epoch (before sharding). With ``num_shards`` > 1,
    rank ``shard_id`` takes every ``num_shards``-th batch; the list is first cut to a multiple of
    ``num_shards`` so all ranks take the same number of steps (DDP needs that), which leaves out at
    most ``num_shards - 1`` batches per epoch — different ones each epoch.
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
        # +1: BOS/EOS are added to the target at collate time.
        self.src_lengths = np.fromiter(
            (len(s) for s in src_ids), dtype=np.int64, count=len(src_ids)
        )
        self.tgt_lengths = np.fromiter(
            (len(t) + 1 for t in tgt_ids), dtype=np.int64, count=len(tgt_ids)
        )
        self._fixed = None if shuffle else self._batches(0)

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
        return self._fixed if self._fixed is not None else self._batches(epoch)

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
