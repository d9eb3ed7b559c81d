import threading

import pytest
import torch
from decoding_toy_model import EOS, CallRecorder, padded, random_sources

from seq2seq.decoding import (
    Hypothesis,
    greedy_search,
    make_batches,
    max_output_lengths,
    pad_batch,
    translate_batches,
)
from seq2seq.decoding.beam import beam_search
from seq2seq.decoding.driver import decode_workers


@pytest.mark.parametrize("beam_size", [1, 3])
def test_results_come_back_in_the_original_order(toy_model, beam_size):
    sources = random_sources(20, min_len=1, max_len=16, seed=21)
    results = translate_batches(toy_model, sources, beam_size=beam_size, batch_size=3, alpha=0.6)
    assert len(results) == len(sources)
    for source, hyp in zip(sources, results, strict=True):
        src, mask = padded([source])
        if beam_size == 1:
            max_len = max_output_lengths(mask, 1.5, 10)
            (alone,) = greedy_search(toy_model, src, mask, max_len=max_len)
        else:
            ((alone,),) = beam_search(toy_model, src, mask, beam_size=beam_size, alpha=0.6)
        assert isinstance(hyp, Hypothesis)
        assert hyp.tokens == alone.tokens
        assert hyp.score == pytest.approx(alone.score, abs=1e-4)


def test_max_tokens_batching_gives_the_same_translations(toy_model):
    sources = random_sources(15, min_len=1, max_len=16, seed=22)
    by_sentences = translate_batches(toy_model, sources, beam_size=2, batch_size=4)
    by_tokens = translate_batches(toy_model, sources, beam_size=2, batch_size=None, max_tokens=40)
    assert [h.tokens for h in by_tokens] == [h.tokens for h in by_sentences]


def test_make_batches_sorts_by_length_and_respects_limits():
    lengths = [3, 10, 1, 7, 7, 2, 50, 4]
    batches = make_batches(lengths, batch_size=3, max_tokens=20)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(lengths, reverse=True)
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 20
    assert [6] in batches  # longer than max_tokens alone: a batch of its own
    with pytest.raises(ValueError, match="batch_size or max_tokens"):
        make_batches(lengths, batch_size=None, max_tokens=None)


def test_pad_batch_builds_ids_and_mask():
    ids, mask = pad_batch([[5, 6, EOS], [EOS]], pad_id=0)
    assert ids.tolist() == [[5, 6, EOS], [EOS, 0, 0]]
    assert mask.tolist() == [[True, True, True], [True, False, False]]


@pytest.mark.parametrize("beam_size", [1, 5])
def test_empty_and_very_long_sources(toy_model, beam_size):
    long_source = random_sources(1, min_len=1000, max_len=1000, seed=23)[0]
    sources = [[EOS], long_source, [9, EOS]]
    results = translate_batches(
        toy_model, sources, beam_size=beam_size, batch_size=2, need_attn=True
    )
    empty, long, short = results
    for hyp, source in zip(results, sources, strict=True):
        assert hyp.attn.shape == (hyp.length, len(source))
        assert hyp.length <= 1.5 * len(source) + 10
    assert empty.attn.shape[1] == 1
    assert len(long.tokens) > 100  # the toy model's outputs track the source length


def test_nbest_returns_lists(toy_model):
    sources = random_sources(5, seed=24)
    results = translate_batches(toy_model, sources, beam_size=4, nbest=3, alpha=0.6)
    assert all(len(hyps) == 3 for hyps in results)
    for hyps in results:
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_runs_in_eval_mode_and_restores_the_mode(toy_model):
    seen_training = []

    class ModeSpy(CallRecorder):
        def decode_step(self, prev_tokens, state, step, *, need_attn=False):
            seen_training.append(self.training)
            return super().decode_step(prev_tokens, state, step, need_attn=need_attn)

    spy = ModeSpy(toy_model).train()
    translate_batches(spy, random_sources(3, seed=25), beam_size=2)
    assert seen_training and not any(seen_training)
    assert spy.training and spy.inner.training
    toy_model.eval()


def test_edge_inputs(toy_model):
    assert translate_batches(toy_model, [], beam_size=5) == []
    with pytest.raises(ValueError, match="source sentence 1 is empty"):
        translate_batches(toy_model, [[EOS], []], beam_size=5)


@pytest.mark.parametrize(
    ("beam_size", "nbest", "message"),
    [
        (0, 1, "beam_size must be >= 1, got beam_size=0"),
        (5, 6, r"nbest must be in \[1, beam_size\], got nbest=6, beam_size=5"),
        (1, 2, "got nbest=2, beam_size=1"),  # greedy search could not give two
        (2, 0, "got nbest=0, beam_size=2"),
    ],
)
def test_bad_beam_arguments_raise_before_decoding(toy_model, beam_size, nbest, message):
    """The decoding library's one guard (beam_search itself does not check again)."""
    recorder = CallRecorder(toy_model)
    with pytest.raises(ValueError, match=message):
        translate_batches(recorder, [[7, EOS]], beam_size=beam_size, nbest=nbest)
    assert recorder.batch_sizes == []  # not one decoding step


def test_outputs_are_plain_python_and_cpu(toy_model):
    (hyp,) = translate_batches(toy_model, [[7, 8, EOS]], beam_size=3, need_attn=True)
    assert all(isinstance(t, int) for t in hyp.tokens)
    assert isinstance(hyp.score, float) and isinstance(hyp.log_prob, float)
    assert hyp.attn.device == torch.device("cpu")


# --------------------------------------------------------------------------- concurrent streams


@pytest.mark.parametrize("beam_size", [1, 4])
def test_concurrent_streams_give_the_same_results_in_order(toy_model, beam_size):
    sources = random_sources(23, min_len=1, max_len=16, seed=26)
    alone = translate_batches(toy_model, sources, beam_size=beam_size, batch_size=4, workers=1)
    streams = translate_batches(toy_model, sources, beam_size=beam_size, batch_size=4, workers=3)
    assert [h.tokens for h in streams] == [h.tokens for h in alone]
    assert [h.score for h in streams] == pytest.approx([h.score for h in alone], abs=1e-5)
    assert torch.get_num_threads() == 1  # restored (the fixture set 1)


def test_streams_get_even_batches_and_the_callers_autocast(toy_model):
    seen: list[tuple[int, bool, torch.dtype, str]] = []

    class Spy(CallRecorder):
        def encode(self, src, src_mask):
            seen.append(
                (
                    src.size(0),
                    torch.is_autocast_enabled("cpu"),
                    torch.get_autocast_dtype("cpu"),
                    threading.current_thread().name,
                )
            )
            with torch.autocast("cpu", enabled=False):  # the toy model is fp32 only
                return super().encode(src, src_mask)

        def decode_step(self, prev_tokens, state, step, *, need_attn=False):
            with torch.autocast("cpu", enabled=False):
                return super().decode_step(prev_tokens, state, step, need_attn=need_attn)

    torch.set_num_threads(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        translate_batches(Spy(toy_model), random_sources(10, seed=27), beam_size=1, batch_size=4)
    assert torch.get_num_threads() == 2
    # 10 sentences, <= 4 a batch, 2 streams: 4 batches of 3 or fewer, not 4 + 4 against 2
    assert sorted(size for size, *_ in seen) == [1, 3, 3, 3]
    assert all(on and dtype == torch.bfloat16 for _, on, dtype, _ in seen)
    assert {name.split("_")[0] for *_, name in seen} == {"decode"}


def test_a_failing_stream_stops_the_others_and_raises(toy_model):
    calls = []

    class Failing(CallRecorder):
        def encode(self, src, src_mask):
            calls.append(src.size(0))
            if len(calls) == 2:
                raise RuntimeError("boom in a stream")
            return super().encode(src, src_mask)

    with pytest.raises(RuntimeError, match="boom in a stream"):
        translate_batches(Failing(toy_model), random_sources(40, seed=28), batch_size=2, workers=2)
    assert len(calls) < 20  # the remaining batches were not decoded
    assert torch.get_num_threads() == 1


def test_decode_workers():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    torch.set_num_threads(2)
    assert decode_workers(None, cpu, 10) == 2
    assert decode_workers(None, cpu, 1) == 1  # one batch: one stream with every thread
    assert decode_workers(4, cpu, 3) == 3
    assert decode_workers(None, cuda, 10) == 1
    with pytest.raises(ValueError, match="workers must be >= 1 or None, got 0"):
        decode_workers(0, cpu, 10)


@pytest.mark.parametrize("workers", [1, 2])
def test_on_batch_counts_every_sentence_once(toy_model, workers):
    """The progress callback: one call per batch with its size, summing to every sentence."""
    sources = random_sources(23, seed=5)
    calls = []
    lock = threading.Lock()

    def count(n):
        with lock:
            calls.append(n)

    translate_batches(
        toy_model, sources, beam_size=2, batch_size=4, workers=workers, on_batch=count
    )
    assert sum(calls) == 23 and len(calls) == 6 and max(calls) <= 4
