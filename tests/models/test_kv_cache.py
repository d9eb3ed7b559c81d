"""KVCache: written in place, grown by CACHE_CHUNK, selected by copying only the filled
positions into the spare buffers the previous selection left, and the autograd guard."""

from __future__ import annotations

import pytest
import torch

from seq2seq.models.kv_cache import CACHE_CHUNK, KVCache

R, H, DH = 3, 2, 4


def filled_cache(length: int, rows: int = R) -> KVCache:
    """A cache whose position p of row r holds 100 * r + p (keys) and its negation (values)."""
    cache = KVCache.empty(rows, H, DH, like=torch.zeros(1))
    for position in range(length):
        key = (100.0 * torch.arange(rows) + position)[:, None, None].expand(rows, H, DH)
        cache.write(position, key, -key)
    return cache


def test_write_is_in_place_and_returns_the_filled_views():
    cache = KVCache.empty(R, H, DH, like=torch.zeros(1, dtype=torch.float64))
    assert cache.keys.shape == cache.values.shape == (R, H, CACHE_CHUNK, DH)
    assert cache.keys.dtype == torch.float64 and cache.length == 0
    buffer = cache.keys
    key = torch.randn(R, H, DH, dtype=torch.float64)
    keys, values = cache.write(0, key, 2 * key)
    assert cache.keys is buffer and cache.length == 1
    assert keys.shape == values.shape == (R, H, 1, DH)
    assert keys.data_ptr() == buffer.data_ptr()  # a view, not a copy
    assert torch.equal(keys[:, :, 0], key) and torch.equal(values[:, :, 0], 2 * key)
    cache.write(0, -key, key)  # the same position again overwrites it
    assert cache.length == 1 and torch.equal(cache.keys[:, :, 0], -key)
    with pytest.raises(ValueError, match="cannot write 2"):
        cache.write(2, key, key)  # a gap would leave garbage in position 1


def test_grows_by_one_chunk_when_full_keeping_the_filled_positions():
    cache = filled_cache(CACHE_CHUNK)
    assert cache.capacity == CACHE_CHUNK
    before = cache.keys.clone()
    keys, _ = cache.write(CACHE_CHUNK, torch.ones(R, H, DH), torch.ones(R, H, DH))
    assert cache.capacity == 2 * CACHE_CHUNK and cache.length == CACHE_CHUNK + 1
    assert keys.shape == (R, H, CACHE_CHUNK + 1, DH)
    assert torch.equal(cache.keys[:, :, :CACHE_CHUNK], before)
    assert torch.equal(cache.keys[:, :, CACHE_CHUNK], torch.ones(R, H, DH))


def test_select_copies_only_the_filled_positions():
    cache = filled_cache(5)
    rows = torch.tensor([2, 0, 0, 1])
    expected_keys = cache.keys[rows, :, :5].clone()
    expected_values = cache.values[rows, :, :5].clone()
    selected = cache.select(rows)
    assert selected.length == 5
    assert selected.keys.shape == selected.values.shape == (4, H, CACHE_CHUNK, DH)
    assert torch.equal(selected.keys[:, :, :5], expected_keys)
    assert torch.equal(selected.values[:, :, :5], expected_values)

    # into a spare whose unfilled positions hold a sentinel: the copy never touches them
    again = selected.select(torch.tensor([3, 2, 1]))  # into the 3-row original buffers
    spare_keys = selected.keys  # becomes `again`'s spare
    spare_keys[:, :, 5:] = 7.0
    third = again.select(torch.tensor([0, 1, 2, 2]))
    assert third.keys.data_ptr() == spare_keys.data_ptr()
    assert (third.keys[:, :, 5:] == 7.0).all()
    assert torch.equal(third.keys[:, :, :5], expected_keys[[3, 2, 1, 1]])


def test_select_reuses_the_previous_buffers_as_spare():
    """Ping-pong: selection n writes into the buffers selection n - 1 read from, so beam search
    allocates no cache memory once the rows stop growing."""
    cache = filled_cache(3)
    original = (cache.keys.data_ptr(), cache.values.data_ptr())
    first = cache.select(torch.tensor([1, 1, 0]))  # no spare yet: new buffers
    assert first.keys.data_ptr() not in original
    second = first.select(torch.tensor([2, 0, 1]))
    assert (second.keys.data_ptr(), second.values.data_ptr()) == original
    third = second.select(torch.tensor([0, 1]))  # fewer rows: the spare's leading rows
    assert third.keys.data_ptr() == first.keys.data_ptr()
    assert third.keys.shape == (2, H, CACHE_CHUNK, DH) and third.keys.is_contiguous()
    fourth = third.select(torch.tensor([0, 1, 1, 0]))  # more rows than the spare: new buffers
    assert fourth.keys.data_ptr() not in original
    assert torch.equal(fourth.keys[:, :, :3], filled_cache(3).keys[[0, 1, 1, 0], :, :3])


def test_a_grown_cache_gets_a_new_spare_of_its_capacity():
    cache = filled_cache(CACHE_CHUNK)
    first = cache.select(torch.arange(R))
    first.write(CACHE_CHUNK, torch.zeros(R, H, DH), torch.zeros(R, H, DH))  # grows
    second = first.select(torch.arange(R))
    assert second.capacity == 2 * CACHE_CHUNK
    assert second.keys.data_ptr() != cache.keys.data_ptr()  # the old spare is too short
    assert torch.equal(second.keys[:, :, :CACHE_CHUNK], filled_cache(CACHE_CHUNK).keys)


def test_autograd_guard_selects_whole_buffers_into_new_tensors():
    """Under autograd ``out=`` cannot record the copy: the whole buffers are selected with
    index_select, gradients flow through, and no spare is kept."""
    source = torch.randn(R, H, DH, requires_grad=True)
    cache = KVCache.empty(R, H, DH, like=torch.zeros(1))
    cache.write(0, source * 2.0, source * 3.0)
    assert cache.keys.requires_grad
    selected = cache.select(torch.tensor([1, 1]))
    assert selected._spare is None
    assert selected.keys.shape == (2, H, CACHE_CHUNK, DH)
    (selected.keys[:, :, 0].sum() + selected.values[:, :, 0].sum()).backward()
    expected = torch.zeros(R, H, DH)
    expected[1] = 2 * (2.0 + 3.0)
    assert torch.equal(source.grad, expected)
    with torch.no_grad():  # no grad mode: the in-place spare path again
        assert cache.select(torch.tensor([0]))._spare is not None
