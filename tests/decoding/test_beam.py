import math

import pytest
import torch
from decoding_toy_model import (
    BOS,
    EOS,
    CallRecorder,
    CopyAllToyGRU,
    SourceFreeSeq2Seq,
    TableSeq2Seq,
    assert_close,
    padded,
    random_sources,
    teacher_forced,
)

from seq2seq.decoding import (
    greedy_search,
    length_penalty,
    max_output_lengths,
    translate_batches,
)
from seq2seq.decoding.beam import beam_search
from seq2seq.models.base import Seq2Seq, StepOutput

A, B, C = 4, 5, 6


def one_source():
    return padded([[7, 8, EOS]])


# --------------------------------------------------------------------------- hand-built model


def test_beam_finds_the_better_sequence_greedy_misses():
    # greedy: A (0.6) then EOS (0.4) = 0.24; best: B (0.4) then EOS (0.9) = 0.36
    model = TableSeq2Seq(
        {(): {A: 0.6, B: 0.4}, (A,): {EOS: 0.4, A: 0.3, B: 0.3}, (B,): {EOS: 0.9, A: 0.1}}
    )
    src, mask = one_source()
    (greedy,) = greedy_search(model, src, mask, max_len=10)
    ((best,),) = beam_search(model, src, mask, beam_size=2, alpha=0.0)
    assert greedy.tokens == [A]
    assert greedy.log_prob == pytest.approx(math.log(0.6) + math.log(0.4), abs=1e-6)
    assert best.tokens == [B]
    assert best.finished
    assert best.log_prob == pytest.approx(math.log(0.4) + math.log(0.9), abs=1e-6)
    assert best.score == best.log_prob  # alpha = 0: no length penalty


def test_length_penalty_value():
    assert length_penalty(3, 1.0) == pytest.approx(8 / 6)
    assert length_penalty(7, 0.6) == pytest.approx((12 / 6) ** 0.6)
    assert length_penalty(10, 0.0) == 1.0
    assert length_penalty(torch.tensor([1, 3]), 1.0).tolist() == pytest.approx([1.0, 8 / 6])


def short_or_long() -> TableSeq2Seq:
    """short: EOS at once, 0.52; long: A A EOS, 0.48 * 1.0 * 0.97 = 0.4656. The plain log-prob
    prefers short; a length penalty of alpha >= 0.6 prefers long."""
    return TableSeq2Seq({(): {EOS: 0.52, A: 0.48}, (A,): {A: 1.0}, (A, A): {EOS: 0.97, A: 0.03}})


def test_length_penalty_changes_the_winner():
    model = short_or_long()
    src, mask = one_source()
    ((short,),) = beam_search(model, src, mask, beam_size=2, alpha=0.0)
    assert short.tokens == []
    assert short.score == pytest.approx(math.log(0.52), abs=1e-6)

    ((long,),) = beam_search(model, src, mask, beam_size=2, alpha=1.0)
    assert long.tokens == [A, A]
    raw = math.log(0.48) + math.log(0.97)
    assert long.log_prob == pytest.approx(raw, abs=1e-6)
    assert long.score == pytest.approx(raw / ((5 + 3) / 6), abs=1e-6)  # 3 steps incl. EOS
    assert long.score > math.log(0.52)  # the short one's penalised score (lp(1) = 1)


def test_beam_search_defaults_are_the_decoding_defaults():
    """Called without settings, beam_search ranks as translate_batches (and seq2seq-evaluate)
    do: with the default length penalty (alpha 0.6), which makes the long hypothesis win."""
    model = short_or_long()
    src, mask = one_source()
    ((searched,),) = beam_search(model, src, mask, beam_size=2)
    (translated,) = translate_batches(model, [[7, 8, EOS]], beam_size=2)
    assert searched.tokens == translated.tokens == [A, A]
    assert searched.score == pytest.approx(translated.score, abs=1e-6)
    assert searched.score == pytest.approx(searched.log_prob / (8 / 6) ** 0.6, abs=1e-6)


def enumerate_complete(table, default, prefix=(), log_prob=0.0, depth=6):
    """Every EOS-terminated sequence with non-zero probability, with its log-prob."""
    if depth == 0:
        return []
    found = []
    for token, p in table.get(prefix, default).items():
        if token == EOS:
            found.append((prefix, log_prob + math.log(p)))
        else:
            found += enumerate_complete(
                table, default, prefix + (token,), log_prob + math.log(p), depth - 1
            )
    return found


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_wide_beam_nbest_equals_exhaustive_search(alpha):
    table = {
        (): {A: 0.5, B: 0.3, C: 0.2},
        (A,): {EOS: 0.2, A: 0.4, B: 0.4},
        (B,): {EOS: 0.75, C: 0.25},
        (C,): {EOS: 0.95, A: 0.05},
        (A, A): {EOS: 0.45, B: 0.55},
        (A, B): {EOS: 0.9, C: 0.1},
    }
    default = {EOS: 1.0}
    model = TableSeq2Seq(table, default=default)
    src, mask = one_source()
    (hyps,) = beam_search(model, src, mask, beam_size=16, alpha=alpha, nbest=5)

    complete = enumerate_complete(table, default)
    expected = sorted(
        ((lp / length_penalty(len(seq) + 1, alpha), list(seq)) for seq, lp in complete),
        reverse=True,
    )[:5]
    assert [h.tokens for h in hyps] == [seq for _, seq in expected]
    assert [h.score for h in hyps] == pytest.approx([s for s, _ in expected], abs=1e-5)
    assert all(h.finished for h in hyps)
    assert len({tuple(h.tokens) for h in hyps}) == 5  # distinct


def test_max_len_without_eos_returns_best_unfinished():
    never_ends = TableSeq2Seq({}, default={A: 0.7, B: 0.3})
    src, mask = padded([[7, EOS], [7, 8, 9, EOS]])
    results = beam_search(
        never_ends, src, mask, beam_size=3, alpha=0.6, max_len=torch.tensor([2, 4])
    )
    for (best,), steps in zip(results, [2, 4], strict=True):
        assert best.tokens == [A] * steps
        assert not best.finished
        assert best.log_prob == pytest.approx(steps * math.log(0.7), abs=1e-5)
        assert best.score == pytest.approx(best.log_prob / length_penalty(steps, 0.6), abs=1e-5)


def test_model_max_decode_length_caps_the_output_length():
    """A Transformer cannot decode past its position table: the limit is capped there."""

    class ThreePositions(TableSeq2Seq):
        max_decode_length = 3

    never_ends = ThreePositions({}, default={A: 1.0})
    src, mask = padded([[7] * 20 + [EOS]])  # ratio/offset would allow 42 steps
    ((best,),) = beam_search(never_ends, src, mask, beam_size=2)
    (greedy,) = greedy_search(never_ends, src, mask, max_len=50)
    assert best.tokens == greedy.tokens == [A, A, A]
    assert not best.finished and not greedy.finished


def test_finished_hypotheses_rank_before_unfinished_ones():
    # EOS at once is the only finished hypothesis; at max length A A A scores better but is cut.
    model = TableSeq2Seq({(): {EOS: 0.1, A: 0.9}}, default={A: 1.0})
    src, mask = one_source()
    ((first, second),) = beam_search(model, src, mask, beam_size=2, nbest=2, max_len=3)
    assert (first.tokens, first.finished) == ([], True)
    assert (second.tokens, second.finished) == ([A, A, A], False)
    assert second.score > first.score


def test_pad_and_bos_are_never_emitted():
    model = TableSeq2Seq({(): {0: 0.5, BOS: 0.3, A: 0.2}})
    src, mask = one_source()
    ((best,),) = beam_search(model, src, mask, beam_size=3)
    assert best.tokens == [A]


def test_model_without_attention_gives_no_matrix():
    class NoAttention(TableSeq2Seq):
        def decode_step(self, prev_tokens, state, step, *, need_attn=False):
            out = super().decode_step(prev_tokens, state, step, need_attn=need_attn)
            return StepOutput(out.log_probs, out.state, None)

    src, mask = one_source()
    ((best,),) = beam_search(NoAttention({(): {A: 1.0}}), src, mask, beam_size=2, need_attn=True)
    assert best.tokens == [A] and best.attn is None


# --------------------------------------------------------------------------- random toy GRU


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_beam_one_is_exactly_greedy(toy_model, alpha):
    sources = random_sources(16, min_len=1, max_len=14, seed=11)
    src, mask = padded(sources)
    max_len = max_output_lengths(mask, 1.5, 10)
    greedy = greedy_search(toy_model, src, mask, max_len=max_len, need_attn=True)
    beam = beam_search(
        toy_model, src, mask, beam_size=1, alpha=alpha, max_len=max_len, need_attn=True
    )
    for g, (b,) in zip(greedy, beam, strict=True):
        assert b.tokens == g.tokens
        assert b.finished == g.finished
        assert b.log_prob == g.log_prob  # same float32 additions in the same order
        if alpha == 0.0:
            assert b.score == g.score
        else:
            assert b.score == pytest.approx(g.log_prob / length_penalty(g.length, alpha), rel=1e-6)
        assert torch.equal(b.attn, g.attn)


def test_beam_five_model_score_beats_greedy(toy_model):
    sources = random_sources(40, min_len=2, max_len=14, seed=12)
    src, mask = padded(sources)
    max_len = max_output_lengths(mask, 1.5, 10)
    greedy = greedy_search(toy_model, src, mask, max_len=max_len)
    beam = beam_search(toy_model, src, mask, beam_size=5, alpha=0.0, max_len=max_len)
    at_least_as_good = [
        b[0].log_prob >= g.log_prob - 1e-5 for g, b in zip(greedy, beam, strict=True)
    ]
    assert sum(at_least_as_good) >= 0.9 * len(sources)
    improvement = sum(b[0].log_prob - g.log_prob for g, b in zip(greedy, beam, strict=True))
    assert improvement > 0


def test_batched_beam_search_equals_one_sentence_at_a_time(toy_model):
    sources = random_sources(12, min_len=1, max_len=15, seed=13)
    src, mask = padded(sources)
    batched = beam_search(toy_model, src, mask, beam_size=4, alpha=0.6, nbest=3, need_attn=True)
    for source, together in zip(sources, batched, strict=True):
        alone_src, alone_mask = padded([source])
        (alone,) = beam_search(
            toy_model, alone_src, alone_mask, beam_size=4, alpha=0.6, nbest=3, need_attn=True
        )
        assert [h.tokens for h in together] == [h.tokens for h in alone]
        assert [h.score for h in together] == pytest.approx([h.score for h in alone], abs=1e-4)
        for t, a in zip(together, alone, strict=True):
            assert_close(t.attn, a.attn, atol=1e-5, rtol=1e-4)


def test_hypotheses_match_teacher_forcing(toy_model):
    """Back-pointers rebuild exactly the sequences that were scored: re-scoring the returned
    tokens step by step gives the same log-prob and the same attention rows."""
    sources = random_sources(8, min_len=1, max_len=12, seed=14)
    src, mask = padded(sources)
    max_len = max_output_lengths(mask, 1.5, 10)
    results = beam_search(toy_model, src, mask, beam_size=5, alpha=0.6, nbest=5, need_attn=True)
    for source, hyps, limit in zip(sources, results, max_len.tolist(), strict=True):
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == len(hyps) == 5
        for hyp in hyps:
            assert hyp.length <= limit
            assert EOS not in hyp.tokens
            log_prob, attn = teacher_forced(toy_model, source, hyp.tokens, hyp.finished)
            assert hyp.log_prob == pytest.approx(log_prob, abs=1e-4)
            assert hyp.score == pytest.approx(log_prob / length_penalty(hyp.length, 0.6), abs=1e-4)
            assert hyp.attn.shape == (hyp.length, len(source))
            assert_close(hyp.attn, attn, atol=1e-5, rtol=1e-4)


def test_max_len_respected_on_toy_model(toy_model):
    sources = random_sources(10, min_len=4, max_len=12, seed=15)
    src, mask = padded(sources)
    results = beam_search(toy_model, src, mask, beam_size=3, nbest=3, max_len=3)
    assert all(h.length <= 3 for hyps in results for h in hyps)
    assert any(not h.finished for hyps in results for h in hyps)  # long sources get cut


def test_finished_sentences_leave_the_batch(toy_model):
    sources = random_sources(12, min_len=1, max_len=15, seed=16)
    src, mask = padded(sources)
    recorder = CallRecorder(toy_model)
    beam_search(recorder, src, mask, beam_size=4)
    first, *sizes = recorder.batch_sizes
    assert first == 12  # step 0: every beam of a sentence is the same BOS, so one row each
    assert sizes[0] == 12 * 4
    assert all(size % 4 == 0 for size in sizes)
    assert all(a >= b for a, b in zip(sizes, sizes[1:], strict=False))
    assert sizes[-1] < sizes[0]


def test_encoder_runs_once_per_sentence(toy_model):
    class EncodeCounter(CallRecorder):
        encoded: list[int] = []

        def encode(self, src, src_mask):
            self.encoded.append(src.size(0))
            return super().encode(src, src_mask)

    model: Seq2Seq = EncodeCounter(toy_model)
    src, mask = padded(random_sources(6, seed=17))
    beam_search(model, src, mask, beam_size=5)
    assert model.encoded == [6]


def test_source_state_shortcut_changes_nothing(toy_model):
    """The toy model copies its source part only when sentences leave: the same hypotheses as a
    model copying its whole state at every reorder."""
    sources = random_sources(12, min_len=1, max_len=15, seed=18)
    src, mask = padded(sources)
    shortcut = CallRecorder(toy_model)
    fast = beam_search(shortcut, src, mask, beam_size=4, alpha=0.6, nbest=2, need_attn=True)
    copy_all = CopyAllToyGRU(seed=0).eval()
    slow = beam_search(copy_all, src, mask, beam_size=4, alpha=0.6, nbest=2, need_attn=True)
    assert len(set(shortcut.batch_sizes)) > 2  # sentences left at several steps
    for a_hyps, b_hyps in zip(fast, slow, strict=True):
        assert [h.tokens for h in a_hyps] == [h.tokens for h in b_hyps]
        assert [h.score for h in a_hyps] == [h.score for h in b_hyps]
        for a, b in zip(a_hyps, b_hyps, strict=True):
            assert torch.equal(a.attn, b.attn)


class RecordingOrders(CallRecorder):
    """Records every RowOrder beam search passes to ``reorder_state``."""

    def __init__(self, inner):
        super().__init__(inner)
        self.orders = []

    def reorder_state(self, state, order):
        self.orders.append(order)
        return super().reorder_state(state, order)


def test_reorder_orders_expand_reorder_and_drop(toy_model):
    """Step 0 expands each sentence's row to its K beams (every sentence stays); later orders
    keep each new row in its sentence's block and name the sentences that stay."""
    sources = random_sources(9, min_len=1, max_len=15, seed=19)
    src, mask = padded(sources)
    recorder = RecordingOrders(toy_model)
    beam_search(recorder, src, mask, beam_size=3)
    first, *later = recorder.orders
    assert first.rows.tolist() == [i for i in range(9) for _ in range(3)]
    assert first.sentences is None
    active = 9
    dropped = False
    for order in later:
        kept = active if order.sentences is None else order.sentences.numel()
        assert order.rows.numel() == 3 * kept
        sentence_of_new_row = torch.arange(kept).repeat_interleave(3)
        old_sentence = order.rows // 3
        if order.sentences is None:
            assert torch.equal(old_sentence, sentence_of_new_row)
        else:
            dropped = True
            assert order.sentences.tolist() == sorted(order.sentences.tolist())
            assert torch.equal(old_sentence, order.sentences[sentence_of_new_row])
        active = kept
    assert dropped


def test_beam_search_on_a_state_holding_no_source():
    """The decoders treat the state as opaque: a model whose state is one bare tensor, with no
    shared source part, decodes batched exactly as one sentence at a time, with sentences
    leaving the batch; beam 1 is exactly greedy."""
    model = SourceFreeSeq2Seq().eval()
    sources = random_sources(10, min_len=1, max_len=12, seed=21)
    src, mask = padded(sources)
    recorder = CallRecorder(model)
    batched = beam_search(recorder, src, mask, beam_size=3, alpha=0.6, nbest=2, need_attn=True)
    assert len(set(recorder.batch_sizes)) > 2  # sentences left at several steps
    assert any(h.finished for hyps in batched for h in hyps)
    for source, together in zip(sources, batched, strict=True):
        (alone,) = beam_search(model, *padded([source]), beam_size=3, alpha=0.6, nbest=2)
        assert [h.tokens for h in together] == [h.tokens for h in alone]
        assert [h.score for h in together] == pytest.approx([h.score for h in alone], abs=1e-5)
        assert all(h.attn is None for h in together)
    max_len = max_output_lengths(mask, 1.5, 10)
    greedy = greedy_search(model, src, mask, max_len=max_len)
    beam_one = beam_search(model, src, mask, beam_size=1, max_len=max_len)
    assert [g.tokens for g in greedy] == [b.tokens for (b,) in beam_one]
    assert [g.log_prob for g in greedy] == [b.log_prob for (b,) in beam_one]
