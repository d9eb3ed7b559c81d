"""top_k: the block-screened top-k must return exactly what torch.topk returns."""

from __future__ import annotations

import pytest
import torch

from seq2seq.decoding.common import TOP_K_CHUNK, top_k


def check_matches_topk(scores: torch.Tensor, k: int) -> None:
    values, cols = top_k(scores, k)
    expected = scores.topk(k, dim=1).values
    assert values.shape == cols.shape == (scores.shape[0], k)
    torch.testing.assert_close(values, expected, rtol=0, atol=0)
    # the indices point at those values, with no column twice in a row
    torch.testing.assert_close(scores.gather(1, cols), values, rtol=0, atol=0)
    assert all(len(set(row)) == k for row in cols.tolist())


@pytest.mark.parametrize("width", [40_000, 8_000, 8_001, 8_063, 64 * 40])  # body + partial tail
@pytest.mark.parametrize("k", [1, 2, 10])
def test_wide_rows_match_torch_topk(width, k):
    g = torch.Generator().manual_seed(width + k)
    check_matches_topk(torch.randn(7, width, generator=g), k)


def test_winners_crowded_in_one_block_and_in_the_tail():
    """All k best entries in a single block (the other blocks' maxima are all lower), or in the
    partial last block."""
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(3, 8_030, generator=g)
    scores[0, 128:138] = torch.arange(10.0) + 10  # ten winners in block 2
    scores[1, 8_000:8_010] = torch.arange(10.0) + 10  # ten winners in the 30-column tail
    scores[2, 5::TOP_K_CHUNK] = 50.0  # one winner per block: ties everywhere
    check_matches_topk(scores, 10)
    values, cols = top_k(scores, 10)
    assert sorted(cols[0].tolist()) == list(range(128, 138))
    assert sorted(cols[1].tolist()) == list(range(8_000, 8_010))
    assert values[2].eq(50.0).all() and cols[2].remainder(TOP_K_CHUNK).eq(5).all()


def test_minus_infinity_rows_and_strided_views():
    """Beam search's first step: all beams but one are -inf; the input may be a view."""
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(4, 5, 8_000, generator=g)
    scores[:, 1:] = float("-inf")
    check_matches_topk(scores.view(4, -1), 10)
    wide = torch.randn(6, 9_000, generator=g)
    check_matches_topk(wide[:, :8_500], 3)  # non-contiguous rows


def test_narrow_rows_fall_back_to_topk():
    scores = torch.tensor([[0.5, 2.0, -1.0, 3.0]])
    values, cols = top_k(scores, 2)
    assert values.tolist() == [[3.0, 2.0]] and cols.tolist() == [[3, 1]]
