"""RNNSeq2Seq: shapes, padding, gradients, teacher forcing == step-by-step decoding for every
variant x cell x wiring, overfitting a tiny reversal task, and building from every YAML option."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from seq2seq.composition import compose
from seq2seq.errors import ConfigError
from seq2seq.models.base import RowOrder
from seq2seq.models.builders import build_model
from seq2seq.models.rnn import BahdanauDecoder, LuongDecoder, RNNSeq2Seq
from seq2seq.modules.attention import (
    attention_class,
    preset_model_options,
    preset_options,
    presets,
)

V, B, S, T = 17, 3, 6, 5
LENGTHS = [6, 3, 1]


pytestmark = pytest.mark.usefixtures("one_thread")


# Sizes that make the tiny batch exercise a preset (a window narrower than S, every location
# row in use), applied where the preset exists.
SMALL = {
    "local_m": {"window": 1},
    "local_p": {"window": 2, "score": "dot"},
    "location": {"max_src_len": S},
}
# preset -> attention options: every registered preset (seq2seq.modules.attention)
ATTENTIONS = {
    preset: {**options, **SMALL.get(preset, {})} for preset, options in preset_options().items()
}


def has_weights(attention: str) -> bool:
    return attention_class(ATTENTIONS[attention]["name"]).has_weights


# wiring id -> (wiring, input_feeding)
WIRINGS = {
    "bahdanau": ("bahdanau", True),
    "luong": ("luong", True),
    "luong-nofeed": ("luong", False),
}


def tiny(
    attention: str, *, cell="gru", wiring="luong", num_layers=1, seed=0, vocab=V, **model
) -> RNNSeq2Seq:
    wiring, feeding = WIRINGS[wiring]
    torch.manual_seed(seed)
    attn = dict(ATTENTIONS[attention], wiring=wiring, input_feeding=feeding)
    # the model options the preset needs (dot: split_directions), and for a dot-form score
    # SMALL chose, the same
    needs = dict(preset_model_options().get(attention, {}))
    if attention_class(attn["name"]).compares_query_and_keys(attn):
        needs.setdefault("split_directions", True)
    sizes = {"emb_size": 8, "hidden_size": 10, "dropout": 0.0} | needs | model
    return RNNSeq2Seq.build(
        dict(sizes, cell=cell, num_layers=num_layers),
        attn,
        src_vocab_size=vocab,
        tgt_vocab_size=vocab,
    )


def batch(seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(LENGTHS)
    src_mask = torch.arange(S)[None, :] < lengths[:, None]
    src = torch.randint(4, V, (B, S), generator=gen).masked_fill(~src_mask, 0)
    tgt_in = torch.randint(4, V, (B, T), generator=gen)
    tgt_in[:, 0] = 2
    return src, src_mask, tgt_in, torch.ones(B, T, dtype=torch.bool)


def stepwise(model, src, src_mask, tgt_in):
    """Teacher-forced decoding through encode + decode_step: (B, T, V) log-probs, (B, T, S)."""
    state = model.encode(src, src_mask)
    log_probs, attns = [], []
    for t in range(tgt_in.size(1)):
        out = model.decode_step(tgt_in[:, t], state, t, need_attn=True)
        state = out.state
        log_probs.append(out.log_probs)
        attns.append(out.attn_weights)
    return torch.stack(log_probs, 1), None if attns[0] is None else torch.stack(attns, 1)


CASES = [
    (a, c, w, 1)
    for a, c, w in itertools.product(ATTENTIONS, ["gru", "lstm"], WIRINGS)
    if has_weights(a) or w != "luong-nofeed"
] + [(a, c, w, 2) for a, c, w in [("additive", "lstm", "bahdanau"), ("local_m", "gru", "luong")]]


@pytest.mark.parametrize(("attention", "cell", "wiring", "layers"), CASES)
def test_teacher_forcing_equals_step_by_step(attention, cell, wiring, layers):
    model = tiny(attention, cell=cell, wiring=wiring, num_layers=layers).eval()
    src, src_mask, tgt_in, tgt_mask = batch()
    with torch.no_grad():
        out = model(src, src_mask, tgt_in, tgt_mask, need_attn=True)
        log_probs, attn = stepwise(model, src, src_mask, tgt_in)
    assert out.logits.shape == (B, T, V) and out.logits.dtype == torch.float32
    assert log_probs.dtype == torch.float32
    torch.testing.assert_close(log_probs, out.logits.log_softmax(-1), rtol=1e-5, atol=1e-5)
    if not has_weights(attention):
        assert out.attn_weights is None and attn is None and not model.has_alignment
    else:
        assert model.has_alignment and out.attn_weights.shape == (B, T, S)
        torch.testing.assert_close(attn, out.attn_weights, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("attention", [a for a in ATTENTIONS if has_weights(a)])
@pytest.mark.parametrize("wiring", list(WIRINGS))
def test_attention_weights_zero_on_padding_and_normalised(attention, wiring):
    model = tiny(attention, wiring=wiring).eval()
    src, src_mask, tgt_in, tgt_mask = batch()
    weights = model(src, src_mask, tgt_in, tgt_mask, need_attn=True).attn_weights
    assert (weights.masked_select(~src_mask[:, None, :]) == 0).all()
    sums = weights.sum(-1)
    if ATTENTIONS[attention].get("mode") == "predictive":  # local-p: not renormalised
        assert (sums <= 1 + 1e-6).all()
    else:
        torch.testing.assert_close(sums, torch.ones(B, T))


@pytest.mark.parametrize("attention", list(ATTENTIONS))
def test_padding_tokens_never_matter(attention):
    model = tiny(attention, cell="lstm").eval()
    src, src_mask, tgt_in, tgt_mask = batch()
    logits = model(src, src_mask, tgt_in, tgt_mask).logits
    garbage = src.masked_fill(~src_mask, 7)
    torch.testing.assert_close(model(garbage, src_mask, tgt_in, tgt_mask).logits, logits)


@pytest.mark.parametrize("attention", list(ATTENTIONS))
@pytest.mark.parametrize("wiring", list(WIRINGS))
def test_gradients_reach_every_parameter(attention, wiring):
    model = tiny(attention, wiring=wiring, num_layers=2, dropout=0.1, tie_embeddings=True).train()
    src, src_mask, tgt_in, tgt_mask = batch()
    src_mask = torch.ones_like(src_mask)  # every location row in use
    src = src.masked_fill(src == 0, 5)
    out = model(src, src_mask, tgt_in, tgt_mask)
    nll = F.cross_entropy(
        out.logits.reshape(-1, V), tgt_in.roll(-1, 1).reshape(-1), reduction="none"
    ).view(B, T)
    loss = nll.mean()
    if out.aux_loss is not None:  # the model's own term (hard attention's REINFORCE)
        loss = loss + out.aux_loss(nll.detach()) / nll.numel()
    loss.backward()
    # every parameter, weight_feed included: DDP fails at its second step on one that no
    # forward uses (luong without input feeding had an empty, unused weight_feed)
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_a_checkpoint_with_an_empty_weight_feed_still_loads():
    """Checkpoints written while every decoder had a weight_feed hold a (G, 0) one without a
    feed: they load into the model that has none."""
    model = tiny("general", wiring="luong-nofeed")
    assert model.decoder.core.weight_feed is None
    state = model.state_dict()
    state["decoder.core.weight_feed"] = torch.empty(30, 0)
    tiny("general", wiring="luong-nofeed", seed=1).load_state_dict(state)


def test_each_wiring_keeps_the_parameter_names_its_checkpoints_hold():
    """A checkpoint holds the decoder's parameters by name and shape: these are those of the
    runs trained so far (E 8, H 10, a 2-layer LSTM: G 40; the additive context 20), so those
    runs still load. The attention's own parameters are its variant's business."""
    rnn = {"weight_ih_l0": (40, 8), "weight_hh_l0": (40, 10)}
    rnn |= {"weight_ih_l1": (40, 10), "weight_hh_l1": (40, 10)}
    rnn |= {f"bias_{kind}_l{layer}": (40,) for kind in ("ih", "hh") for layer in (0, 1)}
    core = {f"decoder.core.rnn.{name}": shape for name, shape in rnn.items()}
    readout = {"decoder.readout.weight": (10, 38), "decoder.readout.bias": (10,)}  # H+C+E -> H
    combine = {"decoder.combine.weight": (10, 30)}  # C+H -> H
    expected = {
        "bahdanau": core | readout | {"decoder.core.weight_feed": (40, 20)},  # the context
        "luong": core | combine | {"decoder.core.weight_feed": (40, 10)},  # h~_{t-1}
        "luong-nofeed": core | combine,
    }
    for wiring, shapes in expected.items():
        state = tiny("additive", cell="lstm", wiring=wiring, num_layers=2).state_dict()
        own = {
            name: tuple(tensor.shape)
            for name, tensor in state.items()
            if name.startswith("decoder.") and not name.startswith("decoder.attention.")
        }
        assert own == shapes, wiring


def test_state_is_batch_first_and_reorderable():
    model = tiny("local_p", cell="lstm", wiring="luong", num_layers=2).eval()
    src, src_mask, tgt_in, _ = batch()
    state = model.encode(src, src_mask)
    hidden, cell = state.recurrent
    assert hidden.shape == (B, 2, 10) and cell.shape == (B, 2, 10)
    assert state.source.memory.shape[:2] == (B, S) and state.source.keys.shape[:2] == (B, S)
    assert state.source.mask.shape == (B, S) and state.source.lengths.shape == (B,)
    assert state.input_feed.shape == (B, 10)
    index = torch.tensor([2, 0, 1])  # greedy: a reordered set of sentences, one row each
    expand = torch.tensor([0, 0, 1, 1, 2, 2])  # beam search's step 0: 2 rows per sentence
    with torch.no_grad():
        first = model.decode_step(tgt_in[:, 0], state, 0, need_attn=True)
        moved_state = model.reorder_state(state, RowOrder(index, sentences=index))
        moved = model.decode_step(tgt_in[index, 0], moved_state, 0, need_attn=True)
        again_state = model.reorder_state(first.state, RowOrder(expand))
        again = model.decode_step(tgt_in[expand, 1], again_state, 1)
        direct = model.decode_step(tgt_in[:, 1], first.state, 1)
    torch.testing.assert_close(moved.log_probs, first.log_probs[index])
    torch.testing.assert_close(moved.attn_weights, first.attn_weights[index])
    torch.testing.assert_close(again.log_probs, direct.log_probs[expand])
    assert again_state.source.memory.shape[0] == 6  # one source row per hypothesis row


@pytest.mark.parametrize("attention", ["additive", "local_p", "location"])
@pytest.mark.parametrize("wiring", ["bahdanau", "luong"])
def test_source_part_is_copied_only_when_sentences_change(attention, wiring):
    """decode_step passes the source part through, and reorder_state copies it only when the
    rows change sentence (expansion, a sentence leaving), not when beams are reordered."""
    model = tiny(attention, wiring=wiring).eval()
    src, src_mask, tgt_in, _ = batch()
    state = model.encode(src, src_mask)
    with torch.no_grad():
        for step in range(3):
            out = model.decode_step(tgt_in[:, step], state, step)
            assert out.state.source is state.source
            state = out.state
        expanded = model.reorder_state(state, RowOrder(torch.tensor([0, 0, 1, 1, 2, 2])))
        assert expanded.source is not state.source
        assert torch.equal(expanded.source.lengths, torch.tensor([6, 6, 3, 3, 1, 1]))
        swapped = model.reorder_state(expanded, RowOrder(torch.tensor([1, 0, 2, 2, 5, 4])))
        assert swapped.source is expanded.source  # the beams moved within their sentences
        dropped = model.reorder_state(
            swapped, RowOrder(torch.tensor([0, 1, 5, 5]), sentences=torch.tensor([0, 2]))
        )
        assert torch.equal(dropped.source.lengths, torch.tensor([6, 6, 1, 1]))
        assert torch.equal(dropped.recurrent[0], swapped.recurrent[0][[0, 1, 5, 5]])


def test_teacher_forcing_zero_feeds_back_argmax():
    """teacher_forcing=0 in training == greedy decoding from the model's own predictions."""
    model = tiny("additive", wiring="bahdanau", teacher_forcing=0.0).train()
    src, src_mask, tgt_in, tgt_mask = batch()
    logits = model(src, src_mask, tgt_in, tgt_mask).logits
    model.eval()
    with torch.no_grad():
        state, tokens, greedy = model.encode(src, src_mask), tgt_in[:, 0], []
        for t in range(T):
            out = model.decode_step(tokens, state, t)
            state, tokens = out.state, out.log_probs.argmax(-1)
            greedy.append(out.log_probs)
        teacher_forced = model(src, src_mask, tgt_in, tgt_mask).logits
    torch.testing.assert_close(logits.log_softmax(-1), torch.stack(greedy, 1), rtol=0, atol=1e-5)
    assert not torch.allclose(teacher_forced, logits)  # the gold prefix differs from greedy


@pytest.mark.parametrize("teacher_forcing", [1.0, 0.0])
@pytest.mark.parametrize("tie_embeddings", [False, True])
def test_features_only_feed_the_output_layer(teacher_forcing, tie_embeddings):
    """Training's fused loss takes features_only=True: output_layer(features) == logits."""
    model = tiny(
        "additive",
        wiring="bahdanau",
        teacher_forcing=teacher_forcing,
        tie_embeddings=tie_embeddings,
    ).train()
    src, src_mask, tgt_in, tgt_mask = batch()
    torch.manual_seed(5)  # the same sampled feedback in both passes
    logits = model(src, src_mask, tgt_in, tgt_mask).logits
    torch.manual_seed(5)
    out = model(src, src_mask, tgt_in, tgt_mask, features_only=True)
    assert out.logits is None and model.output_layer is model.generator
    torch.testing.assert_close(model.output_layer(out.features), logits, rtol=0, atol=1e-6)


def test_bf16_autocast():
    for attention, wiring in [("additive", "bahdanau"), ("local_p", "luong-nofeed")]:
        model = tiny(attention, wiring=wiring, cell="lstm").train()
        src, src_mask, tgt_in, tgt_mask = batch()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(src, src_mask, tgt_in, tgt_mask, need_attn=True)
            loss = F.cross_entropy(out.logits.reshape(-1, V), tgt_in.reshape(-1))
            step = model.decode_step(tgt_in[:, 0], model.encode(src, src_mask), 0)
        loss.backward()
        assert out.logits.dtype == torch.float32 and torch.isfinite(out.logits).all()
        assert step.log_probs.dtype == torch.float32
        torch.testing.assert_close(step.log_probs.exp().sum(-1), torch.ones(B))


@pytest.mark.parametrize("attention", [a for a in ATTENTIONS if has_weights(a)])
def test_attention_weights_are_float32_under_bf16_autocast(attention):
    model = tiny(attention).eval()
    src, src_mask, tgt_in, tgt_mask = batch()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        weights = model(src, src_mask, tgt_in, tgt_mask, need_attn=True).attn_weights
        step = model.decode_step(tgt_in[:, 0], model.encode(src, src_mask), 0, need_attn=True)
    assert weights.dtype == torch.float32 and step.attn_weights.dtype == torch.float32
    if ATTENTIONS[attention].get("mode") != "predictive":
        torch.testing.assert_close(weights.sum(-1), torch.ones(B, T), rtol=0, atol=1e-6)


def test_builder_defaults_and_options():
    decoders = {
        "none": BahdanauDecoder,
        "additive": BahdanauDecoder,
        "content": BahdanauDecoder,
        "general": LuongDecoder,
        "local_m": LuongDecoder,
        "location": LuongDecoder,
    }
    for attention, decoder in decoders.items():
        model = RNNSeq2Seq.build(
            {"emb_size": 8, "hidden_size": 10},
            dict(ATTENTIONS[attention], wiring=None),
            src_vocab_size=V,
            tgt_vocab_size=V,
        )
        assert type(model.decoder) is decoder, attention
    # dot: each encoder direction H/2 = 5, so the encoder is as wide as the decoder (10) and
    # nothing sits between the decoder state and the encoder states but the dot product.
    model = tiny("dot")
    assert model.encoder.output_size == 10 and model.attention.key_size == 10
    assert model.encoder.rnn.hidden_size == 5 and model.encoder.rnn.bidirectional
    assert list(model.attention.parameters()) == []
    assert not any("memory_proj" in name for name, _ in model.named_parameters())
    assert not hasattr(model, "memory_proj")
    assert [b.in_features for b in model.bridge] == [10]
    general = tiny("general")  # its W is (H, 2H): the encoder keeps 2 x H
    assert general.encoder.output_size == 20 and general.attention.key_size == 20
    assert general.attention.scorer.proj.weight.shape == (10, 20)
    unidirectional = tiny("dot", bidirectional=False, split_directions=False)
    assert unidirectional.encoder.output_size == 10 and unidirectional.encoder.rnn.hidden_size == 10
    with pytest.raises(ConfigError) as err:
        RNNSeq2Seq.build(
            {"hidden_size": 10},
            {"name": "multiplicative", "score": "dot"},
            src_vocab_size=V,
            tgt_vocab_size=V,
        )
    assert str(err.value) == (
        "attention.score=dot compares decoder and encoder states directly, so their widths "
        "must match: the encoder gives 20 (2 directions x 10), the decoder 10; set "
        "model.split_directions=true (or model.bidirectional=false)"
    )
    with pytest.raises(ValueError, match="hidden_size must be even with model.split_directions"):
        tiny("additive", hidden_size=9, split_directions=True)
    tied = tiny("additive", tie_embeddings=True)
    assert tied.generator.weight is tied.tgt_embedding.weight
    with pytest.raises(ValueError, match="unknown attention 'bogus'; valid: additive, content"):
        RNNSeq2Seq.build({}, {"name": "bogus"}, src_vocab_size=V, tgt_vocab_size=V)
    with pytest.raises(ValueError, match="model.cell 'rnn'; valid: gru, lstm"):
        RNNSeq2Seq.build({"cell": "rnn"}, {"name": "none"}, src_vocab_size=V, tgt_vocab_size=V)


# --------------------------------------------------------------------------- overfitting


def reversal_corpus(n: int = 64, vocab: int = 20, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 8, (n,), generator=gen)
    src = torch.zeros(n, 7, dtype=torch.long)
    tgt_in = torch.zeros(n, 8, dtype=torch.long)
    tgt_out = torch.zeros(n, 8, dtype=torch.long)
    for i, length in enumerate(lengths.tolist()):
        tokens = torch.randint(4, vocab, (length,), generator=gen)
        src[i, :length] = tokens
        tgt_in[i, 0], tgt_in[i, 1 : length + 1] = 2, tokens.flip(0)  # BOS + reversed
        tgt_out[i, :length], tgt_out[i, length] = tokens.flip(0), 3  # reversed + EOS
    return src, src != 0, tgt_in, tgt_in != 0, tgt_out


@pytest.mark.parametrize(
    ("attention", "wiring"),
    [("additive", "bahdanau"), ("general", "luong-nofeed"), ("local_m", "luong")],
)
def test_overfits_tiny_reversal_corpus(attention, wiring):
    """The model can memorise a tiny corpus. Loss and predictions are read from the same
    parameters, in eval mode, after each update: the claim holds for the model that is checked,
    whatever rounding a CPU's kernels add on the way (a loss read before the last Adam step
    once disagreed with the predictions read after it)."""
    src, src_mask, tgt_in, tgt_mask, tgt_out = reversal_corpus()
    model = tiny(attention, wiring=wiring, vocab=20, emb_size=32, hidden_size=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    real = tgt_out != 0

    def eval_loss_and_accuracy() -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            logits = model(src, src_mask, tgt_in, tgt_mask).logits
        model.train()
        loss = F.cross_entropy(logits.reshape(-1, 20), tgt_out.reshape(-1), ignore_index=0)
        return loss.item(), (logits.argmax(-1) == tgt_out)[real].float().mean().item()

    history = []
    for _ in range(400):  # converges in ~40-80 steps; Adam at 1e-2 has loss spikes on the way
        logits = model(src, src_mask, tgt_in, tgt_mask).logits
        loss = F.cross_entropy(logits.reshape(-1, 20), tgt_out.reshape(-1), ignore_index=0)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        history.append(eval_loss_and_accuracy())
        if history[-1][0] < 0.02 and history[-1][1] == 1.0:
            break
    final_loss, final_accuracy = history[-1]
    assert final_accuracy == 1.0, f"{len(history)} steps, last (loss, accuracy): {history[-3:]}"
    assert final_loss < 0.02


# --------------------------------------------------------------------------- Hydra configs

# every registered preset as its overrides, then options and wirings on top of some
YAML_OPTIONS = [overrides for overrides in presets().values()] + [
    ["attention=additive", "attention.attn_size=6", "model.cell=lstm"],
    ["attention=multiplicative", "attention.score=general", "attention.input_feeding=false"],
    [
        "attention=multiplicative",
        "attention.score=scaled_dot",
        "attention.wiring=bahdanau",
        "model.split_directions=true",
    ],
    ["attention=multiplicative", "attention.score=dot", "model.bidirectional=false"],
    ["attention=multiplicative", "attention.score=general", "attention.scale=learned"],
    [
        "attention=multiplicative",
        "attention.score=dot",
        "attention.scale=none",
        "model.split_directions=true",
    ],
    ["attention=local", "attention.mode=monotonic", "attention.window=2"],
    [
        "attention=local",
        "attention.mode=predictive",
        "attention.score=dot",
        "model.split_directions=true",
    ],
    [
        "attention=local",
        "attention.mode=predictive",
        "attention.score=scaled_dot",
        "attention.scale=learned",
        "model.split_directions=true",
    ],
    ["attention=local", "attention.scale=sqrt"],
    ["attention=content", "attention.init_sharpness=2.0"],
    ["attention=content", "attention.sharpness=global"],
    ["attention=additive", "model.split_directions=true", "model.cell=lstm", "model.num_layers=2"],
    ["attention=location", "attention.max_src_len=32", "model.num_layers=2"],
    ["attention=none", "attention.wiring=luong", "model.bidirectional=false"],
]


@pytest.mark.parametrize("overrides", YAML_OPTIONS, ids=[" ".join(o) for o in YAML_OPTIONS])
def test_builds_from_every_yaml_option(overrides):
    tiny_sizes = ["model=rnn", "model.emb_size=8", "model.hidden_size=12", "model.dropout=0.0"]
    cfg = compose(tiny_sizes + overrides)
    model = build_model(cfg.model, cfg.attention, src_vocab_size=V, tgt_vocab_size=V + 1)
    src, src_mask, tgt_in, tgt_mask = batch()
    out = model(src, src_mask, tgt_in, tgt_mask, need_attn=True)
    assert out.logits.shape == (B, T, V + 1) and torch.isfinite(out.logits).all()
    assert (out.attn_weights is None) == (not attention_class(cfg.attention.name).has_weights)
    expected_wiring = cfg.attention.wiring or type(model.attention).paper_wiring
    assert model.wiring == str(getattr(expected_wiring, "value", expected_wiring))
