from __future__ import annotations

import numpy as np
import pytest

from seq2seq.data.batching import BatchPlan, collate
from seq2seq.data.pipeline import prepare_data
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
