"""Transformer baseline: masking, caching, fast/explicit attention equality, padding invariance,
beam reordering, bf16 autocast, overfitting a tiny task, and building from the Hydra config."""

from __future__ import annotations

import pytest
import torch

from seq2seq.composition import compose
from seq2seq.decoding.beam import beam_search
from seq2seq.models.base import RowOrder
from seq2seq.models.kv_cache import CACHE_CHUNK, KVCache
from seq2seq.models.transformer import (
    TransformerSeq2Seq,
    TransformerState,
    attend,
    causal_mask,
    key_mask,
)
from tests.conftest import tiny_transformer

SRC_V, TGT_V = 23, 19


def make_model(**overrides) -> TransformerSeq2Seq:
    """tests/conftest.py's tiny Transformer on this module's vocabularies, with dropout 0.1."""
    return tiny_transformer(
        **({"src_vocab_size": SRC_V, "tgt_vocab_size": TGT_V, "dropout": 0.1} | overrides)
    )


def make_batch(seed: int = 1, b: int = 4, s: int = 9, t: int = 7, pad_tgt: bool = True):
    """Random batch with right padding; row 1 has a short source, row 2 a short target."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, SRC_V, (b, s), generator=g)
    tgt = torch.randint(4, TGT_V, (b, t), generator=g)
    tgt[:, 0] = 2  # BOS
    src_mask = torch.ones(b, s, dtype=torch.bool)
    src_mask[1, 4:] = False
    src_mask[3, 7:] = False
    tgt_mask = torch.ones(b, t, dtype=torch.bool)
    if pad_tgt:
        tgt_mask[2, 4:] = False
    return src.masked_fill(~src_mask, 0), src_mask, tgt.masked_fill(~tgt_mask, 0), tgt_mask


# --------------------------------------------------------------------------- masks, attention


def test_causal_mask_layout():
    tgt_mask = torch.tensor([[True, True, False]])
    mask = causal_mask(tgt_mask)[0, 0]
    # row 2 is a padding query: it sees the real keys and itself, never an empty row
    expected = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    assert torch.equal(mask, expected)
    only_bos = causal_mask(torch.tensor([[True, False, False]]))[0, 0]
    assert torch.equal(only_bos, torch.tensor([[1, 0, 0], [1, 1, 0], [1, 0, 1]], dtype=torch.bool))
    assert key_mask(torch.tensor([[False, False]])).all()  # empty sentence: attend anywhere


def test_decoder_is_causal():
    model = make_model()
    src, src_mask, tgt, tgt_mask = make_batch(pad_tgt=False)
    base = model(src, src_mask, tgt, tgt_mask).logits
    for i in range(tgt.shape[1] - 1):
        changed = tgt.clone()
        changed[:, i + 1 :] = (changed[:, i + 1 :] + 5) % (TGT_V - 4) + 4
        out = model(src, src_mask, changed, tgt_mask).logits
        torch.testing.assert_close(out[:, : i + 1], base[:, : i + 1], atol=1e-5, rtol=1e-5)
        assert (out[:, i + 1 :] - base[:, i + 1 :]).abs().max() > 1e-3  # later positions do move


def test_encoder_without_positions_is_permutation_equivariant():
    model = make_model()
    model.src_positions = None
    torch.manual_seed(3)
    src = torch.randint(4, SRC_V, (2, 8))
    src_mask = torch.ones(2, 8, dtype=torch.bool)
    perm = torch.randperm(8)
    memory, _ = model._encode(src, src_mask)
    memory_p, _ = model._encode(src[:, perm], src_mask[:, perm])
    torch.testing.assert_close(memory_p, memory[:, perm], atol=1e-5, rtol=1e-5)
    # with positions the encoder is not equivariant
    model = make_model()
    memory, _ = model._encode(src, src_mask)
    memory_p, _ = model._encode(src[:, perm], src_mask[:, perm])
    assert (memory_p - memory[:, perm]).abs().max() > 1e-2


def test_attend_fast_equals_explicit():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 5, 8), torch.randn(3, 2, 6, 8), torch.randn(3, 2, 6, 8)
    mask = key_mask(
        torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0]]).bool()
    )
    fast, none = attend(q, k, v, mask)
    slow, weights = attend(q, k, v, mask, need_weights=True)
    assert none is None
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-5)
    reference = torch.softmax((q @ k.transpose(-2, -1) / 8**0.5).masked_fill(~mask, -1e9), -1)
    torch.testing.assert_close(weights, reference, atol=1e-6, rtol=1e-5)


def test_cpu_low_precision_training_path_matches_sdpa():
    """bf16 + autograd on CPU runs the written-out softmax (faster backward); same numbers."""
    torch.manual_seed(0)
    mask = key_mask(torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]]).bool())
    qkv = [torch.randn(2, 2, n, 8).bfloat16() for n in (5, 6, 6)]
    leaves = [x.clone().requires_grad_() for x in qkv]
    out, weights = attend(*leaves, mask)
    out.float().square().sum().backward()
    ref_leaves = [x.float().requires_grad_() for x in qkv]
    ref = torch.nn.functional.scaled_dot_product_attention(*ref_leaves, attn_mask=mask)
    ref.square().sum().backward()
    assert weights is None and out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)
    for leaf, ref_leaf in zip(leaves, ref_leaves, strict=True):
        torch.testing.assert_close(leaf.grad.float(), ref_leaf.grad, atol=5e-2, rtol=5e-2)


def test_decoder_self_attention_is_sdpas_is_causal_and_exact_on_real_positions(monkeypatch):
    """The teacher-forced decoder's self-attention asks SDPA for is_causal with no boolean mask
    (CUDA's flash kernel takes no mask); over right-padded targets every real position gets
    what the explicit causal_mask gives it."""
    import seq2seq.models.transformer as transformer

    model = make_model()
    src, src_mask, tgt, tgt_mask = make_batch()
    calls = []
    real = transformer.F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
        calls.append((q.shape[-2] == k.shape[-2], attn_mask is None, is_causal))
        return real(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal)

    monkeypatch.setattr(transformer.F, "scaled_dot_product_attention", spy)
    memory, attn_mask = model._encode(src, src_mask)
    calls.clear()
    features, _ = model._decode(memory, attn_mask, tgt, tgt_mask, set())
    # per decoder layer: self-attention (square, causal, no mask), then cross-attention
    assert calls == [(True, True, True), (False, False, False)] * 2
    x = model._embed(model.tgt_embed, model.tgt_positions, tgt, 0)
    kvs = [layer.cross_attn.project_memory(memory) for layer in model.decoder]
    for layer, kv in zip(model.decoder, kvs, strict=True):
        x, _ = layer(x, causal_mask(tgt_mask), kv, attn_mask, False)
    masked = model.decoder_norm(x)
    torch.testing.assert_close(features[tgt_mask], masked[tgt_mask], atol=1e-6, rtol=1e-5)


def test_model_fast_equals_explicit_and_weights_are_distributions():
    model = make_model()
    src, src_mask, tgt, tgt_mask = make_batch()
    fast = model(src, src_mask, tgt, tgt_mask)
    assert fast.attn_weights is None
    with_attn = model(src, src_mask, tgt, tgt_mask, need_attn=True)
    torch.testing.assert_close(with_attn.logits, fast.logits, atol=1e-5, rtol=1e-5)

    weights = model.cross_attention_weights(src, src_mask, tgt, tgt_mask)  # (B, L, H, T, S)
    assert weights.shape == (4, 2, 4, 7, 9) and weights.dtype == torch.float32
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, 2, 4, 7))
    pad = ~src_mask[:, None, None, None, :].expand_as(weights)
    assert weights[pad].abs().max() == 0.0  # exactly zero on source padding
    assert weights[~pad].min() > 0.0
    # forward's alignment = last layer, mean over heads; a chosen head is that head
    torch.testing.assert_close(with_attn.attn_weights, weights[:, -1].mean(1))
    head1 = make_model(alignment_layer=0, alignment_head=1)
    out = head1(src, src_mask, tgt, tgt_mask, need_attn=True)
    torch.testing.assert_close(out.attn_weights, weights[:, 0, 1])


def test_outputs_finite_with_empty_source_and_padding_queries():
    model = make_model()
    src, src_mask, tgt, tgt_mask = make_batch()
    src_mask[0] = False  # a whole empty sentence
    src[0] = 0
    out = model(src, src_mask, tgt, tgt_mask, need_attn=True)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.attn_weights).all()
    model.train()
    out = model(src, src_mask, tgt, tgt_mask)
    out.logits.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_source_padding_ids_do_not_matter():
    model = make_model()
    src, src_mask, tgt, tgt_mask = make_batch()
    base = model(src, src_mask, tgt, tgt_mask, need_attn=True)
    noisy = src.clone()
    noisy[~src_mask] = torch.randint(4, SRC_V, (int((~src_mask).sum()),))
    out = model(noisy, src_mask, tgt, tgt_mask, need_attn=True)
    torch.testing.assert_close(out.logits, base.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.attn_weights, base.attn_weights, atol=1e-6, rtol=1e-5)


# --------------------------------------------------------------------------- incremental decoding


@pytest.mark.parametrize(
    "pre_norm, tgt_len", [(True, 7), (False, 7), (True, 2 * CACHE_CHUNK + 3)]
)  # the last one grows the cache buffers twice
def test_incremental_decoding_equals_full_recomputation(pre_norm, tgt_len):
    model = make_model(pre_norm=pre_norm, dropout=0.3)  # eval(): dropout off
    src, src_mask, tgt, tgt_mask = make_batch(t=tgt_len, pad_tgt=False)
    full = model(src, src_mask, tgt, tgt_mask, need_attn=True)
    state = model.encode(src, src_mask)
    assert state.source.attn_mask.shape == (4, 1, 1, 9)
    assert state.source.cross[1][0].shape == state.source.cross[1][1].shape == (4, 4, 9, 8)
    assert state.caches[0].keys.shape == (4, 4, CACHE_CHUNK, 8)
    assert state.caches[0].length == 0
    for step in range(tgt.shape[1]):
        out = model.decode_step(tgt[:, step], state, step, need_attn=True)
        state = out.state
        assert out.log_probs.dtype == torch.float32 and out.log_probs.shape == (4, TGT_V)
        capacity = CACHE_CHUNK * (step // CACHE_CHUNK + 1)
        cache = state.caches[1]
        assert cache.keys.shape == cache.values.shape == (4, 4, capacity, 8)
        assert cache.length == step + 1
        expected = torch.log_softmax(full.logits[:, step], dim=-1)
        torch.testing.assert_close(out.log_probs, expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            out.attn_weights, full.attn_weights[:, step], atol=1e-6, rtol=1e-5
        )
    assert model.decode_step(tgt[:, 0], state, 0).attn_weights is None


def test_features_only_feed_the_output_layer():
    """Training's fused loss takes features_only=True: output_layer(features) == logits."""
    model = make_model()
    src, src_mask, tgt, tgt_mask = make_batch()
    full = model(src, src_mask, tgt, tgt_mask, need_attn=True)
    out = model(src, src_mask, tgt, tgt_mask, need_attn=True, features_only=True)
    assert out.logits is None and out.features.shape == (4, 7, 32)
    assert model.output_layer.weight is model.tgt_embed.weight  # tied
    torch.testing.assert_close(model.output_layer(out.features), full.logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.attn_weights, full.attn_weights)


def test_decode_step_advances_the_state_in_place():
    """decode_step writes each layer's cache in place and passes the source part through:
    the returned state is the same object, so reorder_state may share the source safely."""
    model = make_model(decoder_layers=3)
    src, src_mask, tgt, _ = make_batch(pad_tgt=False)
    state = model.encode(src, src_mask)
    source, caches = state.source, list(state.caches)
    for step in range(3):
        out = model.decode_step(tgt[:, step], state, step)
        assert out.state is state and state.source is source
        assert all(a is b for a, b in zip(state.caches, caches, strict=True))
    assert [cache.length for cache in state.caches] == [3, 3, 3]
    assert model.max_decode_length == model.max_positions == 1024


def copy_source_per_row(model: TransformerSeq2Seq) -> None:
    """Make ``model`` reorder like a model without shared source rows: K copies of the source
    state, one per hypothesis row (CrossAttention.step then sees groups of 1)."""
    shared = model.reorder_state

    def reorder_state(state, order):
        caches = shared(state, RowOrder(order.rows)).caches
        return TransformerState(state.source.select(order.rows), caches)

    model.reorder_state = reorder_state


@torch.no_grad()
def test_beam_rows_share_one_source_row_per_sentence():
    """reorder_state keeps one source row per sentence for its G hypothesis rows; they give the
    same log-probs and weights as G full copies of the source state."""
    model = make_model(decoder_layers=2)
    src, src_mask, tgt, _ = make_batch(pad_tgt=False)
    to_beams = torch.arange(src.shape[0]).repeat_interleave(3)  # G = 3 rows per sentence
    shared = model.reorder_state(model.encode(src, src_mask), RowOrder(to_beams))
    copy_source_per_row(model)
    copied = model.reorder_state(model.encode(src, src_mask), RowOrder(to_beams))
    assert shared.source.cross[0][0].shape[0] == shared.source.attn_mask.shape[0] == 4
    assert copied.source.cross[0][0].shape[0] == 3 * 4
    assert shared.caches[0].keys.shape[0] == copied.caches[0].keys.shape[0] == 3 * 4
    g = torch.Generator().manual_seed(5)
    for step in range(4):
        tokens = torch.randint(4, TGT_V, (to_beams.numel(),), generator=g)
        a = model.decode_step(tokens, shared, step, need_attn=True)
        b = model.decode_step(tokens, copied, step, need_attn=True)
        torch.testing.assert_close(a.log_probs, b.log_probs, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(a.attn_weights, b.attn_weights, atol=1e-6, rtol=1e-5)
        shared, copied = a.state, b.state
    with pytest.raises(ValueError, match="7 decoder rows cannot be split"):
        state = model.encode(src, src_mask)
        uneven = TransformerState(
            state.source, [c.select(torch.tensor([0, 0, 1, 1, 2, 2, 3])) for c in state.caches]
        )
        model.decode_step(torch.full((7,), 5), uneven, 0)


@torch.no_grad()
def test_beam_search_is_the_same_with_and_without_shared_source_rows():
    model = make_model(decoder_layers=2)
    src, src_mask, _, _ = make_batch(pad_tgt=False)
    max_len = torch.tensor([3, 9, 5, 7])  # sentences leave the batch at different steps
    kwargs = dict(beam_size=4, max_len=max_len, nbest=2, need_attn=True)
    shared = beam_search(model, src, src_mask, **kwargs)
    copy_source_per_row(model)  # K copies of the source state
    copied = beam_search(model, src, src_mask, **kwargs)
    for hyps_a, hyps_b in zip(shared, copied, strict=True):
        assert [h.tokens for h in hyps_a] == [h.tokens for h in hyps_b]
        for a, b in zip(hyps_a, hyps_b, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-5)
            torch.testing.assert_close(a.attn, b.attn, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("queries", [1, 5])  # greedy: one per row; beam: a sentence's beams
def test_decoding_step_takes_the_explicit_path_and_matches_sdpa(queries, monkeypatch):
    """A decoding step on CPU runs the written-out attention (SDPA is never called); same
    numbers as SDPA."""
    g = torch.Generator().manual_seed(3)
    q = torch.randn(6, 4, queries, 8, generator=g)
    k, v = torch.randn(6, 4, 11, 8, generator=g), torch.randn(6, 4, 11, 8, generator=g)
    mask = torch.rand(6, 1, 1, 11, generator=g) > 0.3
    mask[:, ..., 0] = True
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    def no_sdpa(*args, **kwargs):
        raise AssertionError("a decoding step called SDPA")

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", no_sdpa)
    ctx, weights = attend(q, k, v, mask, decoding_step=True)
    torch.testing.assert_close(ctx, expected, atol=1e-6, rtol=1e-5)
    assert weights is None


@pytest.mark.parametrize("sentences", [False, True])
@torch.no_grad()  # as in decoding
def test_reordered_state_equals_reordered_batch(sentences):
    """reorder_state after 3 steps == decoding the reordered batch from scratch. With
    ``sentences`` (greedy's order: one row per sentence) the source part follows them; without
    (beam search's step-0 expansion to 2 rows per sentence) it stays one row per sentence."""
    model = make_model()
    src, src_mask, tgt, tgt_mask = make_batch(pad_tgt=False)
    state = model.encode(src, src_mask)
    for step in range(3):
        state = model.decode_step(tgt[:, step], state, step).state
    if sentences:
        index = torch.tensor([2, 0, 3, 1])
        order = RowOrder(index, sentences=index)
    else:
        index = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
        order = RowOrder(index)
    reordered = model.reorder_state(state, order)
    assert reordered.caches[0].keys.shape == (index.numel(), 4, CACHE_CHUNK, 8)
    assert reordered.caches[0].length == 3
    assert reordered.source.attn_mask.shape[0] == 4
    out = model.decode_step(tgt[index, 3], reordered, 3, need_attn=True)

    state_b = model.encode(src[index], src_mask[index])
    for step in range(3):
        state_b = model.decode_step(tgt[index, step], state_b, step).state
    out_b = model.decode_step(tgt[index, 3], state_b, 3, need_attn=True)
    torch.testing.assert_close(out.log_probs, out_b.log_probs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.attn_weights, out_b.attn_weights, atol=1e-6, rtol=1e-5)
    for got, expected in zip(out.state.caches, out_b.state.caches, strict=True):
        assert got.length == expected.length == 4  # the positions written so far
        torch.testing.assert_close(got.keys[:, :, :4], expected.keys[:, :, :4])
        torch.testing.assert_close(got.values[:, :, :4], expected.values[:, :, :4])
    # state_b has one source row per hypothesis row; out.state one per sentence
    source_rows = torch.arange(4) if sentences else torch.arange(0, 8, 2)
    got, expected = out.state.source, state_b.source.select(source_rows)
    assert torch.equal(got.attn_mask, expected.attn_mask)
    for (k, v), (k_b, v_b) in zip(got.cross, expected.cross, strict=True):
        torch.testing.assert_close(k, k_b, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(v, v_b, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- precision


def test_bf16_autocast_close_to_fp32():
    model = make_model()
    src, src_mask, tgt, tgt_mask = make_batch()
    ref = model(src, src_mask, tgt, tgt_mask).logits
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(src, src_mask, tgt, tgt_mask, need_attn=True)
        state = model.encode(src, src_mask)
        step = model.decode_step(tgt[:, 0], state, 0, need_attn=True)
    assert out.logits.dtype == torch.bfloat16
    assert torch.isfinite(out.logits).all()
    assert (out.logits.float() - ref).abs().max() < 0.15
    assert torch.isfinite(out.attn_weights).all()
    assert step.log_probs.dtype == torch.float32
    ref_step = torch.log_softmax(ref[:, 0], -1)
    assert (step.log_probs - ref_step).abs().max() < 0.15


def test_bf16_weights_decode():
    """A model cast to bf16 (cheaper decoding than autocast, which re-casts weights per step)
    still decodes, with float32 log-probs close to the fp32 model's."""
    model = make_model()
    src, src_mask, tgt, _ = make_batch(pad_tgt=False)
    ref = model.decode_step(tgt[:, 0], model.encode(src, src_mask), 0).log_probs
    model = model.bfloat16()
    state = model.encode(src, src_mask)
    for step in range(3):
        out = model.decode_step(tgt[:, step], state, step, need_attn=True)
        state = out.state
        assert out.log_probs.dtype == torch.float32 and torch.isfinite(out.log_probs).all()
        torch.testing.assert_close(out.attn_weights.sum(-1), torch.ones(4))
        if step == 0:
            assert (out.log_probs - ref).abs().max() < 0.15


# --------------------------------------------------------------------------- learning


def reversal_task(n: int = 64, vocab: int = 20, length: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, vocab, (n, length), generator=g)
    out = src.flip(1)
    bos = torch.full((n, 1), 2)
    eos = torch.full((n, 1), 3)
    return src, torch.cat([bos, out], 1), torch.cat([out, eos], 1)


def test_overfits_reversal_task():
    torch.manual_seed(0)
    src, tgt_in, tgt_out = reversal_task()
    model = TransformerSeq2Seq(
        src_vocab_size=20,
        tgt_vocab_size=20,
        d_model=64,
        heads=4,
        ff_size=128,
        encoder_layers=1,
        decoder_layers=1,
        dropout=0.0,
        share_embeddings=True,
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    src_mask, tgt_mask = src != 0, tgt_in != 0
    for _ in range(300):
        logits = model(src, src_mask, tgt_in, tgt_mask).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 20), tgt_out.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.01:
            break
    assert loss.item() < 0.05, loss.item()
    # greedy decoding through encode/decode_step reproduces every reversal
    model.eval()
    state = model.encode(src, src_mask)
    prev = torch.full((64,), 2)
    outputs = []
    for step in range(7):
        out = model.decode_step(prev, state, step)
        state, prev = out.state, out.log_probs.argmax(-1)
        outputs.append(prev)
    assert torch.equal(torch.stack(outputs, 1), tgt_out)


# --------------------------------------------------------------------------- construction


def test_bad_values_are_named():
    with pytest.raises(ValueError, match="d_model \\(30\\).*heads \\(4\\)"):
        make_model(d_model=30)
    with pytest.raises(ValueError, match="23 != tgt_vocab_size=19"):
        make_model(share_embeddings=True)
    with pytest.raises(ValueError, match="alignment_layer.*got 2"):
        make_model(alignment_layer=2)
    with pytest.raises(ValueError, match="alignment_head.*got 4"):
        make_model(alignment_head=4)
    model = make_model(max_positions=8)
    src, src_mask, tgt, tgt_mask = make_batch()
    with pytest.raises(ValueError, match="max_positions=8"):
        model(src, src_mask, tgt, tgt_mask)


def test_sharing_and_tying():
    tied = make_model(src_vocab_size=TGT_V, share_embeddings=True)
    assert tied.src_embed is tied.tgt_embed and tied.output.weight is tied.tgt_embed.weight
    untied = make_model(tie_output=False)
    assert untied.output.weight is not untied.tgt_embed.weight
    assert untied.num_parameters() - make_model().num_parameters() == TGT_V * 32


def test_build_num_layers_fallback():
    model = TransformerSeq2Seq.build(
        {"d_model": 32, "heads": 2, "ff_size": 64, "num_layers": 2, "decoder_layers": 1},
        {},
        src_vocab_size=SRC_V,
        tgt_vocab_size=TGT_V,
    )
    assert len(model.encoder) == 2 and len(model.decoder) == 1


def test_build_takes_a_whole_model_node_and_no_attention_node():
    """The config's model node as it is (its ``name`` included) and attention None build the
    same model; another family's options are refused by name."""
    sizes = {"d_model": 32, "heads": 2, "ff_size": 64, "num_layers": 1, "dropout": 0.0}
    torch.manual_seed(0)
    plain = TransformerSeq2Seq.build(sizes, {}, src_vocab_size=SRC_V, tgt_vocab_size=TGT_V)
    torch.manual_seed(0)
    node = TransformerSeq2Seq.build(
        {"name": "transformer", **sizes}, None, src_vocab_size=SRC_V, tgt_vocab_size=TGT_V
    )
    assert plain.state_dict().keys() == node.state_dict().keys()
    for key, tensor in plain.state_dict().items():
        torch.testing.assert_close(node.state_dict()[key], tensor)
    with pytest.raises(
        ValueError, match=r"TransformerSeq2Seq.build was given the options of model=rnn"
    ):
        TransformerSeq2Seq.build({"name": "rnn"}, None, src_vocab_size=SRC_V, tgt_vocab_size=TGT_V)


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["model.pre_norm=false"],
        ["model.learned_positions=true"],
        ["model.share_embeddings=true"],
        ["model.tie_output=false"],
    ],
)
def test_build_from_hydra_config(extra):
    from seq2seq.models.builders import build_model

    base = ["model=transformer", "model.d_model=32", "model.heads=2", "model.ff_size=64"]
    cfg = compose(base + ["model.num_layers=1"] + extra)
    model = build_model(cfg.model, cfg.attention, src_vocab_size=TGT_V, tgt_vocab_size=TGT_V)
    assert isinstance(model, TransformerSeq2Seq)
    assert len(model.encoder) == 1 and len(model.decoder) == 1
    model.eval()
    src, src_mask, tgt, tgt_mask = make_batch()
    src = src.clamp(max=TGT_V - 1)
    out = model(src, src_mask, tgt, tgt_mask, need_attn=True)
    assert out.logits.shape == (4, 7, TGT_V) and out.attn_weights.shape == (4, 7, 9)
    assert torch.isfinite(out.logits).all()
    if "model.share_embeddings=true" in extra:
        assert model.src_embed is model.tgt_embed
    if "model.tie_output=false" in extra:
        assert model.output.weight is not model.tgt_embed.weight


@pytest.mark.parametrize("beam_size", [1, 4])
def test_decoding_with_the_cache_aware_selection_equals_the_generic_one(beam_size):
    """KVCache.select copies only written cache positions, into ping-pong buffers; greedy and
    beam search (sentences leaving, the cache growing past CACHE_CHUNK) give what a full copy
    of every buffer gives."""
    from seq2seq.decoding import translate_batches

    model = make_model(decoder_layers=2)
    g = torch.Generator().manual_seed(4)
    sources = [
        torch.randint(4, SRC_V, (int(n),), generator=g).tolist() + [3]
        for n in torch.randint(1, 12, (9,), generator=g)
    ]
    kwargs = dict(beam_size=beam_size, batch_size=5, max_len_ratio=1.0, max_len_offset=25)
    fast = translate_batches(model, sources, **kwargs)

    def full_copy(state, order):
        source = state.source if order.sentences is None else state.source.select(order.sentences)
        caches = [
            KVCache(
                c.keys.index_select(0, order.rows), c.values.index_select(0, order.rows), c.length
            )
            for c in state.caches
        ]
        return TransformerState(source, caches)

    model.reorder_state = full_copy
    generic = translate_batches(model, sources, **kwargs)
    assert [h.tokens for h in fast] == [h.tokens for h in generic]
    assert max(len(h.tokens) for h in fast) > CACHE_CHUNK
    assert [h.score for h in fast] == pytest.approx([h.score for h in generic], abs=1e-5)
