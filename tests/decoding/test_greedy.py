import math

import pytest
import torch
from decoding_toy_model import (
    EOS,
    CallRecorder,
    TableSeq2Seq,
    assert_close,
    padded,
    random_sources,
    teacher_forced,
)

from seq2seq.decoding import greedy_search, max_output_lengths

A, B = 4, 5


def test_greedy_follows_the_argmax_and_sums_log_probs():
    model = TableSeq2Seq({(): {A: 0.6, B: 0.4}, (A,): {EOS: 0.4, A: 0.3, B: 0.3}})
    src, mask = padded([[7, EOS]])
    (hyp,) = greedy_search(model, src, mask, max_len=10)
    assert hyp.tokens == [A]
    assert hyp.finished
    assert hyp.score == pytest.approx(math.log(0.6) + math.log(0.4), abs=1e-6)
    assert hyp.log_prob == hyp.score


def test_greedy_never_emits_pad_or_bos():
    model = TableSeq2Seq({(): {0: 0.5, 2: 0.3, A: 0.2}}, default={EOS: 1.0})
    src, mask = padded([[7, EOS]])
    (hyp,) = greedy_search(model, src, mask, max_len=10)
    assert hyp.tokens == [A]


def test_per_sentence_max_len_without_eos_returns_unfinished():
    never_ends = TableSeq2Seq({}, default={A: 0.7, B: 0.3})
    src, mask = padded([[7, EOS], [7, 8, 9, EOS], [EOS]])
    hyps = greedy_search(never_ends, src, mask, max_len=torch.tensor([2, 5, 1]))
    assert [h.tokens for h in hyps] == [[A] * 2, [A] * 5, [A]]
    assert not any(h.finished for h in hyps)
    assert hyps[1].score == pytest.approx(5 * math.log(0.7), abs=1e-5)


def test_max_output_lengths_formula():
    _, mask = padded([[EOS], [5] * 9 + [EOS], [5] * 19 + [EOS]])
    assert max_output_lengths(mask, 1.5, 10).tolist() == [12, 25, 40]
    assert max_output_lengths(mask, 1.1, 0).tolist() == [2, 11, 22]  # no float round-up
    assert max_output_lengths(mask, 0.0, 0).tolist() == [1, 1, 1]  # at least one step


def test_finished_sentences_leave_the_batch(toy_model):
    sources = random_sources(12, min_len=1, max_len=15, seed=3)
    src, mask = padded(sources)
    recorder = CallRecorder(toy_model)
    greedy_search(recorder, src, mask, max_len=max_output_lengths(mask, 1.5, 10))
    sizes = recorder.batch_sizes
    assert sizes[0] == 12
    assert all(a >= b for a, b in zip(sizes, sizes[1:], strict=False))
    assert sizes[-1] < sizes[0]
    assert sum(sizes) < len(sizes) * 12  # less work than decoding padding to the end


def test_greedy_scores_and_attention_match_teacher_forcing(toy_model):
    sources = random_sources(10, min_len=1, max_len=12, seed=4)
    src, mask = padded(sources)
    max_len = max_output_lengths(mask, 1.5, 10)
    hyps = greedy_search(toy_model, src, mask, max_len=max_len, need_attn=True)
    for source, hyp, limit in zip(sources, hyps, max_len.tolist(), strict=True):
        assert hyp.length <= limit
        log_prob, attn = teacher_forced(toy_model, source, hyp.tokens, hyp.finished)
        assert hyp.log_prob == pytest.approx(log_prob, abs=1e-4)
        # rows = decoding steps (EOS included), columns = the real source only
        assert hyp.attn.shape == (len(hyp.tokens) + int(hyp.finished), len(source))
        assert_close(hyp.attn, attn, atol=1e-5, rtol=1e-4)
        assert_close(hyp.attn.sum(dim=1), torch.ones(hyp.length))


def test_greedy_without_need_attn_returns_no_matrix(toy_model):
    src, mask = padded(random_sources(3, seed=5))
    assert all(h.attn is None for h in greedy_search(toy_model, src, mask, max_len=20))
