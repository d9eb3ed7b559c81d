from __future__ import annotations

import numpy as np
import pytest

from seq2seq.data.batching import BatchPlan, collate, token_batches
from seq2seq.data.pipeline import prepare_data
from seq2seq.data.token_store import FlatIds
from seq2seq.data.vocab import BOS_ID, EOS_ID, PAD_ID
from tests.conftest import compose_config, needs_multi30k


def random_corpus(n=500, seed=0):
    rng = np.random.default_rng(seed)
    src = [list(rng.integers(4, 50, rng.integers(1, 40))) + [EOS_ID] for _ in range(n)]
    tgt = [list(rng.integers(4, 50, rng.integers(1, 40))) for _ in range(n)]
    return src, tgt


def test_collate_layout():
    batch = collate([[5, 6, EOS_ID], [7, EOS_ID]], [[8], [9, 10, 11]], [4, 2])
    assert batch.src.tolist() == [[5, 6, EOS_ID], [7, EOS_ID, PAD_ID]]
    assert batch.src_mask.tolist() == [[True, True, True], [True, True, False]]
    assert batch.src_lengths.tolist() == [3, 2]
    assert batch.tgt_in.tolist() == [[BOS_ID, 8, PAD_ID, PAD_ID], [BOS_ID, 9, 10, 11]]
    assert batch.tgt_out.tolist() == [[8, EOS_ID, PAD_ID, PAD_ID], [9, 10, 11, EOS_ID]]
    assert batch.tgt_mask.sum(1).tolist() == [2, 4]
    assert batch.num_tgt_tokens == 6 and batch.indices.tolist() == [4, 2]


@pytest.mark.parametrize("max_tokens", [64, 300, 2000])
def test_max_tokens_and_each_example_once(max_tokens):
    src, tgt = random_corpus()
    plan = BatchPlan(src, tgt, max_tokens=max_tokens, seed=3)
    for epoch in range(2):
        seen = []
        for batch in plan.epoch(epoch):
            assert batch.src.numel() <= max_tokens and batch.tgt_in.numel() <= max_tokens
            seen += batch.indices.tolist()
        assert sorted(seen) == list(range(len(src)))


def test_same_seed_same_order_new_epoch_new_order():
    src, tgt = random_corpus()
    order = lambda plan, e: [b.tolist() for b in plan.epoch_indices(e)]  # noqa: E731
    a, b = BatchPlan(src, tgt, max_tokens=300, seed=1), BatchPlan(src, tgt, max_tokens=300, seed=1)
    assert order(a, 0) == order(b, 0)
    assert order(a, 0) != order(a, 1)
    assert order(a, 0) != order(BatchPlan(src, tgt, max_tokens=300, seed=2), 0)


def test_no_shuffle_is_fixed_and_resume_skips():
    src, tgt = random_corpus()
    plan = BatchPlan(src, tgt, max_tokens=300, shuffle=False)
    assert [b.tolist() for b in plan.epoch_indices(0)] == [
        b.tolist() for b in plan.epoch_indices(5)
    ]
    full = [b.indices.tolist() for b in plan.epoch(0)]
    assert [b.indices.tolist() for b in plan.epoch(0, start=3)] == full[3:]


def test_shards_are_disjoint_and_equal():
    src, tgt = random_corpus()
    shards = [
        BatchPlan(src, tgt, max_tokens=300, seed=1, num_shards=2, shard_id=r) for r in range(2)
    ]
    a, b = (s.epoch_indices(0) for s in shards)
    assert len(a) == len(b)
    ids_a, ids_b = set(np.concatenate(a).tolist()), set(np.concatenate(b).tolist())
    assert not ids_a & ids_b
    total = BatchPlan(src, tgt, max_tokens=300, seed=1).num_batches(0)
    assert len(a) + len(b) >= total - 1


def sequential_greedy_cut(src_lengths, tgt_lengths, max_tokens, seed, shuffle):
    """The batcher's rule, one example at a time (as it was written before it was vectorised):
    sort by (target, source) length with a seeded tie-break, then start a new batch when
    adding the next example would make rows x longest row exceed max_tokens on a side."""
    n = len(src_lengths)
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    order = order[np.lexsort((src_lengths[order], tgt_lengths[order]))]
    batches, start, max_src, max_tgt = [], 0, 0, 0
    for pos, idx in enumerate(order):
        new_src, new_tgt = max(max_src, src_lengths[idx]), max(max_tgt, tgt_lengths[idx])
        rows = pos - start + 1
        if rows > 1 and (rows * new_src > max_tokens or rows * new_tgt > max_tokens):
            batches.append(order[start:pos].tolist())
            start, new_src, new_tgt = pos, src_lengths[idx], tgt_lengths[idx]
        max_src, max_tgt = new_src, new_tgt
    if start < n:
        batches.append(order[start:].tolist())
    return batches


@pytest.mark.parametrize("max_tokens", [1, 7, 64, 300, 5000])
@pytest.mark.parametrize("shuffle", [True, False])
def test_the_vectorised_cut_is_the_sequential_greedy_cut(max_tokens, shuffle):
    rng = np.random.default_rng(max_tokens)
    for n, high in ((0, 5), (1, 5), (400, 60), (300, 3)):  # 3: long runs of equal lengths
        src, tgt = rng.integers(0, high, n), rng.integers(0, high, n)
        if n:
            src[rng.integers(n)] = 400  # one example over every budget
        got = token_batches(src, tgt, max_tokens=max_tokens, seed=9, shuffle=shuffle)
        assert [b.tolist() for b in got] == sequential_greedy_cut(src, tgt, max_tokens, 9, shuffle)


@pytest.mark.parametrize("shards", [2, 3, 4])
def test_ranks_read_disjoint_shards_that_cover_the_epoch(shards):
    """Each rank takes every shards-th batch of the same epoch order: disjoint, equally many,
    and together every example but those of at most shards - 1 left-out batches."""
    src, tgt = random_corpus(700, seed=2)
    src_ids, tgt_ids = FlatIds.from_sequences(src), FlatIds.from_sequences(tgt)
    whole = BatchPlan(src_ids, tgt_ids, max_tokens=200, seed=5)
    for epoch in range(2):
        order = whole.epoch_indices(epoch)
        ranks = [
            BatchPlan(src_ids, tgt_ids, max_tokens=200, seed=5, num_shards=shards, shard_id=r)
            for r in range(shards)
        ]
        taken = [np.concatenate(r.epoch_indices(epoch)).tolist() for r in ranks]
        assert len({r.num_batches(epoch) for r in ranks}) == 1
        seen = [i for t in taken for i in t]
        assert len(seen) == len(set(seen))  # disjoint
        usable = len(order) - len(order) % shards
        assert sorted(seen) == sorted(np.concatenate(order[:usable]).tolist())
        assert len(order) - usable < shards
        for r, rank in enumerate(ranks):  # each rank reads only its own rows
            assert [b.indices.tolist() for b in rank.epoch(epoch)] == [
                b.tolist() for b in order[r:usable:shards]
            ]


def test_example_longer_than_max_tokens_gets_own_batch():
    plan = BatchPlan(
        [[5] * 50 + [EOS_ID], [5, EOS_ID]], [[6] * 3, [6]], max_tokens=10, shuffle=False
    )
    assert sorted(len(b) for b in plan.epoch_indices(0)) == [1, 1]
    with pytest.raises(ValueError, match="max_tokens must be positive, got 0"):
        BatchPlan([[5, EOS_ID]], [[6]], max_tokens=0)


@needs_multi30k
def test_multi30k_padding_below_ten_percent(shared_cache):
    cfg = compose_config(f"data.cache_dir={shared_cache}", "data.vocab.size=8000")
    train = prepare_data(cfg.data, splits=("train",)).splits["train"]
    plan = BatchPlan(train.src_ids, train.tgt_ids, max_tokens=4096, seed=1)
    fraction = plan.padding_fraction(0)
    print(
        f"Multi30k train padding at max_tokens=4096: {fraction:.1%} over {plan.num_batches(0)} batches"
    )
    assert fraction < 0.10
