"""Every attention variant against the interface contract, plus hand-computed golden values."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest
import torch

from seq2seq.modules.attention import (
    ATTENTIONS,
    AttentionState,
    LocalAttention,
    MultiplicativeAttention,
    attention_class,
    build_attention,
    preset_options,
)

B, S, T, SIZE = 3, 7, 4, 6
LENGTHS = torch.tensor([7, 4, 1])

# Sizes that make these tiny inputs exercise a preset (a window narrower than S, every location
# row in use), applied where the preset exists; every registered preset is tested.
SMALL = {
    "local_m": {"window": 1},
    "local_p": {"window": 2},
    "content": {"init_sharpness": 3.0},
    "location": {"max_src_len": S},
}
# (id, options): every registered preset (each multiplicative score, both local modes), plus
# a few more combinations.
VARIANTS = [
    (preset, {**options, **SMALL.get(preset, {})}) for preset, options in preset_options().items()
] + [
    ("local_m-dot", {"name": "local", "mode": "monotonic", "window": 2, "score": "dot"}),
    ("local_p-scaled", {"name": "local", "mode": "predictive", "window": 1, "score": "scaled_dot"}),
    ("dot-learned", {"name": "multiplicative", "score": "dot", "scale": "learned"}),
    ("general-sqrt", {"name": "multiplicative", "score": "general", "scale": "sqrt"}),
    ("local_m-learned", {"name": "local", "mode": "monotonic", "window": 2, "scale": "learned"}),
    ("content-global", {"name": "content", "sharpness": "global", "init_sharpness": 3.0}),
]
IDS = [variant_id for variant_id, _ in VARIANTS]
OPTIONS = [options for _, options in VARIANTS]
GLOBAL = [o for o in OPTIONS if o["name"] in ("additive", "multiplicative", "content")]
WITH_WEIGHTS = [o for o in OPTIONS if attention_class(o["name"]).has_weights]
WEIGHTS_IDS = [i for i, o in VARIANTS if o in WITH_WEIGHTS]


pytestmark = pytest.mark.usefixtures("one_thread")


def make(options: dict, seed: int = 0):
    torch.manual_seed(seed)
    return build_attention(query_size=SIZE, key_size=SIZE, **options)


def inputs(seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    query = torch.randn(B, T, SIZE, generator=gen)
    keys = torch.randn(B, S, SIZE, generator=gen)
    values = torch.randn(B, S, SIZE, generator=gen)
    mask = torch.arange(S)[None, :] < LENGTHS[:, None]  # (B, S)
    return query, keys, values, mask


def run(attn, query, keys, values, mask, step: int = 0):
    state = AttentionState(step=step, src_lengths=mask.sum(-1))
    return attn(query, attn.prepare(keys), values, mask, state)


@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
def test_shapes(options):
    attn = make(options)
    context, weights = run(attn, *inputs())
    assert context.shape == (B, T, attn.context_size)
    if not attn.has_weights:
        assert attn.context_size == 0 and weights is None
    else:
        assert attn.context_size == SIZE and weights.shape == (B, T, S)
        assert torch.isfinite(context).all()


@pytest.mark.parametrize("options", WITH_WEIGHTS, ids=WEIGHTS_IDS)
def test_weights_sum_and_zero_on_padding(options):
    attn = make(options)
    _, _, _, mask = inputs()
    _, weights = run(attn, *inputs(), step=2)
    assert (weights[~mask[:, None, :].expand_as(weights)] == 0).all()  # exactly 0 on padding
    assert (weights >= 0).all()
    sums = weights.sum(-1)
    if options.get("mode") == "predictive":  # Gaussian after the softmax, not renormalised
        assert (sums <= 1 + 1e-6).all() and (sums > 0).all()
        assert (sums < 1 - 1e-4).any()
    else:
        torch.testing.assert_close(sums, torch.ones(B, T))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
def test_padding_content_does_not_matter(options, training):
    """In both modes; the same seed before each call, for a variant that samples in
    training (hard attention)."""
    attn = make(options).train(training)
    query, keys, values, mask = inputs()
    noise = torch.randn(B, S, SIZE) * 100
    torch.manual_seed(7)
    context, weights = run(attn, query, keys, values, mask, step=1)
    pad = ~mask[..., None]
    torch.manual_seed(7)
    context2, weights2 = run(attn, query, keys + noise * pad, values - noise * pad, mask, step=1)
    torch.testing.assert_close(context2, context, rtol=0, atol=1e-6)
    if weights is not None:
        torch.testing.assert_close(weights2, weights, rtol=0, atol=1e-7)


@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
def test_gradients_reach_every_parameter(options):
    attn = make(options)
    if not attn.has_weights:
        assert not list(attn.parameters())
        return
    query, keys, values, mask = (t.clone() for t in inputs())
    mask = torch.ones_like(mask)  # every location row in use
    query.requires_grad_(True)
    keys.requires_grad_(True)
    context, _ = run(attn, query, keys, values, mask)
    loss = (context * torch.randn_like(context)).sum()
    aux = attn.auxiliary_loss(torch.ones(B, T, dtype=torch.bool))  # hard attention's REINFORCE
    if aux is not None:
        loss = loss + aux(torch.rand(B, T, generator=torch.Generator().manual_seed(2)) * 3)
    loss.backward()
    for name, param in attn.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    if options["name"] != "location":  # location ignores the keys
        assert keys.grad.abs().sum() > 0
    assert query.grad.abs().sum() > 0


@pytest.mark.parametrize("options", GLOBAL, ids=[i for i, o in VARIANTS if o in GLOBAL])
def test_global_variants_are_permutation_invariant(options):
    attn = make(options).eval()  # deterministic (hard attention samples in training)
    query, keys, values, mask = inputs()
    context, weights = run(attn, query, keys, values, mask)
    perm = torch.randperm(S, generator=torch.Generator().manual_seed(3))
    context_p, weights_p = run(attn, query, keys[:, perm], values[:, perm], mask[:, perm])
    torch.testing.assert_close(context_p, context, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(weights_p, weights[:, :, perm], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("options", WITH_WEIGHTS, ids=WEIGHTS_IDS)
def test_many_rows_equal_one_row_per_step(options):
    """A (B, T, *) query at step s equals T single-row calls at steps s..s+T-1 (in eval
    mode: hard attention samples in training)."""
    attn = make(options).eval()
    query, keys, values, mask = inputs()
    context, weights = run(attn, query, keys, values, mask, step=2)
    for i in range(T):
        c_i, w_i = run(attn, query[:, i : i + 1], keys, values, mask, step=2 + i)
        torch.testing.assert_close(c_i[:, 0], context[:, i], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(w_i[:, 0], weights[:, i], rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- local windows


@pytest.mark.parametrize("window", [1, 2, 3])
def test_local_monotonic_window(window):
    attn = make({"name": "local", "mode": "monotonic", "window": window})
    query, keys, values, mask = inputs()
    step = 1
    _, weights = run(attn, query, keys, values, mask, step=step)
    positions = torch.arange(S)
    for b in range(B):
        for i in range(T):
            center = min(step + i, int(LENGTHS[b]) - 1)  # p_t = t, clamped to the last token
            allowed = ((positions - center).abs() <= window) & mask[b]
            assert (weights[b, i][~allowed] == 0).all()
            assert (weights[b, i][allowed] > 0).all()
            torch.testing.assert_close(weights[b, i].sum(), torch.tensor(1.0))


@pytest.mark.parametrize("window", [1, 2])
def test_local_predictive_window_and_gaussian(window):
    attn = make({"name": "local", "mode": "predictive", "window": window})
    query, keys, values, mask = inputs()
    state = AttentionState(src_lengths=LENGTHS)
    centers = attn.centers(query, mask, state)  # (B, T)
    assert ((centers >= 0) & (centers <= LENGTHS[:, None])).all()  # p_t in [0, S]
    _, weights = run(attn, query, keys, values, mask)
    dist = torch.arange(S)[None, None, :] - centers[..., None]  # (B, T, S)
    outside = (dist.abs() > window) | ~mask[:, None, :]
    assert (weights[outside] == 0).all()
    # Inside: softmax over the window times exp(-(s - p)^2 / (2 (D/2)^2)) (Luong Eq. 10).
    scores = attn.score(query, attn.prepare(keys), state).masked_fill(outside, -math.inf)
    expected = torch.softmax(scores, -1).nan_to_num(0.0) * torch.exp(
        -(dist**2) / (2 * (window / 2) ** 2)
    )
    torch.testing.assert_close(weights, expected, rtol=1e-5, atol=1e-7)


def test_local_monotonic_golden_value():
    """D=1, step 2, dot score, hand-set keys: weights are a softmax over positions 1, 2, 3."""
    attn = build_attention(
        name="local", query_size=2, key_size=2, mode="monotonic", window=1, score="dot"
    )
    keys = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0], [5.0, 5.0]]])
    query = torch.tensor([[[1.0, 0.0]]])
    mask = torch.ones(1, 5, dtype=torch.bool)
    _, weights = attn(query, keys, keys, mask, AttentionState(step=2))
    z = 1 + math.e + math.e**2  # scores at positions 1, 2, 3 are 0, 1, 2
    expected = torch.tensor([[[0.0, 1 / z, math.e / z, math.e**2 / z, 0.0]]])
    torch.testing.assert_close(weights, expected)


# --------------------------------------------------------------------------- golden values


def test_dot_attention_golden_value():
    attn = build_attention(name="multiplicative", query_size=2, key_size=2, score="dot")
    query = torch.tensor([[[1.0, 0.0]]])  # (1, 1, 2)
    keys = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [9.0, 9.0]]])  # last one is padding
    values = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [100.0, 100.0]]])
    mask = torch.tensor([[True, True, True, False]])
    context, weights = attn(query, attn.prepare(keys), values, mask)
    e = math.e
    w = torch.tensor([e, 1.0, e]) / (2 * e + 1)  # softmax of the scores (1, 0, 1)
    torch.testing.assert_close(weights, torch.cat([w, torch.zeros(1)]).view(1, 1, 4))
    expected = (w[:, None] * values[0, :3]).sum(0)  # (2,)
    torch.testing.assert_close(context, expected.view(1, 1, 2))
    torch.testing.assert_close(context[0, 0, 0], torch.tensor((e + 3 + 5 * e) / (2 * e + 1)))


def test_scaled_dot_and_general_golden_values():
    query = torch.tensor([[[2.0, 0.0, 0.0, 0.0]]])
    keys = torch.tensor([[[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    scaled = build_attention(name="multiplicative", query_size=4, key_size=4, score="scaled_dot")
    scores = scaled.score(query, scaled.prepare(keys), AttentionState())
    torch.testing.assert_close(scores, torch.tensor([[[1.0, 0.0]]]))  # 2 / sqrt(4)
    general = build_attention(name="multiplicative", query_size=4, key_size=3, score="general")
    with torch.no_grad():
        general.scorer.proj.weight.copy_(torch.arange(12.0).view(4, 3))  # W: (query, key)
    keys3 = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    scores = general.score(query, general.prepare(keys3), AttentionState())
    torch.testing.assert_close(scores, torch.tensor([[[0.0, 4.0]]]))  # 2 * W[0, :] @ h
    _, weights = general(query, general.prepare(keys3), keys3, mask)
    torch.testing.assert_close(weights[0, 0, 1], torch.tensor(1 / (1 + math.exp(-4.0))))


def test_additive_golden_value():
    attn = build_attention(name="additive", query_size=1, key_size=1, attn_size=1)
    with torch.no_grad():
        attn.query_proj.weight.fill_(1.0)
        attn.query_proj.bias.fill_(0.0)
        attn.key_proj.weight.fill_(2.0)
        attn.v.weight.fill_(3.0)
    query = torch.tensor([[[0.5]]])
    keys = torch.tensor([[[0.0], [1.0]]])
    scores = attn.score(query, attn.prepare(keys), AttentionState())
    expected = 3 * torch.tanh(torch.tensor([[[0.5, 2.5]]]))  # v tanh(q + 2 h)
    torch.testing.assert_close(scores, expected)


@pytest.mark.parametrize("sharpness", ["per_step", "global"])
def test_content_is_scaled_cosine(sharpness):
    attn = build_attention(
        name="content", query_size=2, key_size=2, sharpness=sharpness, init_sharpness=2.0
    )
    with torch.no_grad():
        attn.query_proj.weight.copy_(torch.eye(2))
        attn.query_proj.bias.zero_()
        if sharpness == "per_step":
            attn.key_strength.weight.zero_()  # beta_t = softplus(b) = init_sharpness
    query = torch.tensor([[[3.0, 0.0]]])
    keys = torch.tensor([[[5.0, 0.0], [0.0, 0.1], [1.0, 1.0]]])
    scores = attn.score(query, attn.prepare(keys), AttentionState())
    torch.testing.assert_close(scores, torch.tensor([[[2.0, 0.0, 2 / math.sqrt(2)]]]))


def test_content_key_strength_is_positive_and_per_step():
    """Graves 2014: beta_t = softplus(w^T s_t + b) >= 0, emitted at every step from the state;
    it starts near init_sharpness and differs from step to step."""
    torch.manual_seed(0)
    attn = build_attention(name="content", query_size=SIZE, key_size=SIZE, init_sharpness=5.0)
    assert dict(attn.named_parameters()).keys() == {
        "query_proj.weight",
        "query_proj.bias",
        "key_strength.weight",
        "key_strength.bias",
    }
    assert attn.key_strength.weight.shape == (1, SIZE) and attn.key_strength.bias.shape == (1,)
    query, keys, _, _ = inputs()
    beta = attn.beta(query)  # (B, T, 1)
    assert beta.shape == (B, T, 1) and (beta > 0).all()
    assert abs(beta.mean().item() - 5.0) < 1.0  # near init_sharpness at initialisation
    assert beta[0, :, 0].unique().numel() == T  # one value per step
    assert beta[:, 0, 0].unique().numel() == B  # and per sentence
    with torch.no_grad():  # even a hugely negative pre-activation keeps beta >= 0
        attn.key_strength.bias.fill_(-1e4)
    assert (attn.beta(query) >= 0).all()
    # the score is beta_t times the cosine, row by row
    with torch.no_grad():
        attn.key_strength.bias.fill_(1.0)
    keys_p = attn.prepare(keys)
    cosine = torch.nn.functional.normalize(attn.query_proj(query), dim=-1) @ keys_p.transpose(1, 2)
    torch.testing.assert_close(
        attn.score(query, keys_p, AttentionState()), cosine * attn.beta(query)
    )
    # the global option: one scalar, the parameter of before
    glob = build_attention(name="content", query_size=SIZE, key_size=SIZE, sharpness="global")
    assert dict(glob.named_parameters()).keys() == {
        "query_proj.weight",
        "query_proj.bias",
        "sharpness",
    }
    assert glob.sharpness.shape == () and glob.sharpness.item() == 5.0


def test_location_uses_first_rows_and_renormalises():
    attn = build_attention(name="location", query_size=2, key_size=5, max_src_len=4)
    with torch.no_grad():
        attn.proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [7.0, 7.0]]))
        attn.proj.bias.zero_()
    query = torch.tensor([[[1.0, 2.0]]])
    keys = torch.zeros(1, 3, 5)
    mask = torch.tensor([[True, True, False]])
    _, weights = attn(query, attn.prepare(keys), keys, mask)
    expected = torch.softmax(torch.tensor([1.0, 2.0]), 0)  # rows 0, 1; row 2 is padding
    torch.testing.assert_close(weights, torch.cat([expected, torch.zeros(1)]).view(1, 1, 3))


def test_location_gives_positions_past_max_src_len_no_weight(monkeypatch, caplog):
    """A source longer than max_src_len is attended over its first max_src_len positions; the
    later ones get exactly 0, and one warning per process says so, with the count."""
    from seq2seq.modules.attention import location

    attn = build_attention(name="location", query_size=2, key_size=5, max_src_len=4)
    with torch.no_grad():
        attn.proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [7.0, 7.0]]))
        attn.proj.bias.zero_()
    query = torch.tensor([[[1.0, 2.0]], [[1.0, 2.0]]])
    keys = torch.zeros(2, 6, 5)
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])  # 6 > 4 and 3 <= 4 positions
    _, weights = attn(query, attn.prepare(keys), keys, mask)
    long_row = torch.softmax(torch.tensor([1.0, 2.0, 3.0, 21.0]), 0)
    short_row = torch.softmax(torch.tensor([1.0, 2.0, 3.0]), 0)
    torch.testing.assert_close(weights[0, 0], torch.cat([long_row, torch.zeros(2)]))
    torch.testing.assert_close(weights[1, 0], torch.cat([short_row, torch.zeros(3)]))
    assert (weights[0, 0, 4:] == 0).all()
    monkeypatch.setattr(location, "_WARNED", False)
    with caplog.at_level("WARNING", logger=location.__name__):
        attn.observe_source(mask[1:])  # no sentence longer: nothing said
        assert not caplog.records
        for _ in range(3):
            attn.observe_source(mask)
    assert [r.getMessage() for r in caplog.records] == [
        "location attention addresses only the first 4 source positions: 1 sentence in a "
        "batch of 2 is longer; their later positions get no attention weight (raise "
        "attention.max_src_len to address them; said once per process)"
    ]


# --------------------------------------------------------------------------- errors, registry


def test_unknown_variant_lists_valid_names():
    with pytest.raises(ValueError) as info:
        build_attention(name="bogus", query_size=4, key_size=4)
    message = str(info.value)
    assert "bogus" in message and "\n" not in message
    for name in ATTENTIONS:
        assert name in message


@pytest.mark.parametrize("name", ["multiplicative", "local"])
def test_unknown_score_lists_valid_names(name):
    message = r"^unknown attention\.score 'cosine'; valid: dot, general, scaled_dot$"
    with pytest.raises(ValueError, match=message):
        build_attention(name=name, query_size=4, key_size=4, score="cosine")


def test_bad_values_are_named():
    with pytest.raises(ValueError, match=r"attention.window must be >= 1, got 0"):
        build_attention(name="local", query_size=4, key_size=4, window=0)
    with pytest.raises(
        ValueError, match=r"^unknown attention\.mode 'sideways'; valid: monotonic, predictive$"
    ):
        build_attention(name="local", query_size=4, key_size=4, mode="sideways")
    with pytest.raises(ValueError, match=r"score=dot compares .* got query size 4 != key size 8"):
        build_attention(name="multiplicative", query_size=4, key_size=8, score="dot")
    with pytest.raises(
        ValueError, match=r"^unknown attention\.scale 'hot'; valid: none, sqrt, learned$"
    ):
        build_attention(name="multiplicative", query_size=4, key_size=4, scale="hot")
    with pytest.raises(
        ValueError, match=r"^unknown attention\.sharpness 'sometimes'; valid: per_step, global$"
    ):
        build_attention(name="content", query_size=4, key_size=4, sharpness="sometimes")
    with pytest.raises(ValueError, match=r"scaled_dot"):
        build_attention(name="local", query_size=4, key_size=8, score="scaled_dot")


def test_which_scores_compare_query_and_keys_directly():
    direct = MultiplicativeAttention.compares_query_and_keys
    assert direct({"score": "dot"}) == (
        "attention.score=dot compares decoder and encoder states directly"
    )
    assert direct({"score": "scaled_dot", "scale": "learned"}).startswith(
        "attention.score=scaled_dot"
    )
    assert direct({"score": "general"}) is None
    assert LocalAttention.compares_query_and_keys({"score": "dot", "mode": "monotonic"})
    assert LocalAttention.compares_query_and_keys({"score": "general"}) is None
    for name in ("none", "additive", "content", "location"):
        assert attention_class(name).compares_query_and_keys({}) is None, name


@pytest.mark.parametrize("name", ["multiplicative", "local"])
@pytest.mark.parametrize("score", ["dot", "scaled_dot"])
def test_dot_scores_have_no_parameter_between_query_and_keys(name, score):
    extra = {"mode": "monotonic"} if name == "local" else {}
    attn = build_attention(name=name, query_size=SIZE, key_size=SIZE, score=score, **extra)
    assert list(attn.parameters()) == []  # s^T h (/ sqrt(d)): nothing learned
    keys = torch.randn(B, S, SIZE)
    assert attn.prepare(keys) is keys  # the keys are the encoder states themselves


# --------------------------------------------------------------------------- temperature


def _scale_options(name: str, score: str, scale: str | None) -> dict:
    extra = {"mode": "monotonic", "window": 3} if name == "local" else {}
    return {"name": name, "score": score, "scale": scale, **extra}


@pytest.mark.parametrize("name", ["multiplicative", "local"])
@pytest.mark.parametrize("score", ["dot", "general", "scaled_dot"])
def test_scale_changes_only_the_temperature(name, score):
    """none, sqrt and learned: the same parameters (names, shapes, values from one seed), but
    learned's one scalar; scores of none and sqrt differ by exactly 1/sqrt(d); learned starts
    at sqrt(d)."""
    size = 16  # sqrt(d) = 4: the factor is a power of two, so "exactly" is exact
    gen = torch.Generator().manual_seed(4)
    query, keys = torch.randn(B, T, size, generator=gen), torch.randn(B, S, size, generator=gen)
    built, scores = {}, {}
    for scale in ("none", "sqrt", "learned"):
        torch.manual_seed(0)
        attn = build_attention(query_size=size, key_size=size, **_scale_options(name, score, scale))
        built[scale] = attn
        scores[scale] = attn.score(query, attn.prepare(keys), AttentionState())
    shapes = {k: {n: p.shape for n, p in a.named_parameters()} for k, a in built.items()}
    assert shapes["none"] == shapes["sqrt"]
    assert shapes["learned"] == {**shapes["none"], "scorer.log_temperature": torch.Size([])}
    assert sum(p.numel() for p in built["learned"].parameters()) == (
        sum(p.numel() for p in built["none"].parameters()) + 1
    )
    for key, value in built["none"].state_dict().items():  # the same init
        assert torch.equal(built["sqrt"].state_dict()[key], value), key
        assert torch.equal(built["learned"].state_dict()[key], value), key
    assert torch.equal(scores["sqrt"], scores["none"] / 4)  # exactly the factor 1/sqrt(16)
    torch.testing.assert_close(scores["learned"], scores["sqrt"])  # exp(log 4) = 4
    torch.testing.assert_close(built["learned"].scorer.temperature(), torch.tensor(4.0))
    # the default is what the score implies: sqrt for scaled_dot, none for dot and general
    torch.manual_seed(0)
    default = build_attention(query_size=size, key_size=size, **_scale_options(name, score, None))
    implied = "sqrt" if score == "scaled_dot" else "none"
    assert default.scorer.scale == implied
    assert torch.equal(
        default.score(query, default.prepare(keys), AttentionState()), scores[implied]
    )


def test_learned_temperature_is_positive_and_learns():
    attn = build_attention(
        name="multiplicative", query_size=SIZE, key_size=SIZE, score="dot", scale="learned"
    )
    (param,) = attn.parameters()
    assert param is attn.scorer.log_temperature and param.shape == ()
    torch.testing.assert_close(param.detach(), torch.tensor(math.log(math.sqrt(SIZE))))
    with torch.no_grad():
        param.fill_(-50.0)  # any value of the parameter is a positive temperature
    assert attn.scorer.temperature() > 0
    query, keys, values, mask = inputs()
    with torch.no_grad():
        param.fill_(0.0)
    context, _ = run(attn, query, keys, values, mask)
    context.sum().backward()
    assert param.grad is not None and param.grad != 0


def test_scale_labels():
    label = attention_class("multiplicative").label
    assert label({"score": "dot", "scale": None}) == "multiplicative/dot"
    assert label({"score": "scaled_dot", "scale": "sqrt"}) == "multiplicative/scaled_dot"
    assert label({"score": "dot", "scale": "learned"}) == "multiplicative/dot/learned"
    local = attention_class("local").label
    assert local({"mode": "predictive", "score": "general", "scale": "sqrt"}) == (
        "local-p/general/sqrt"
    )


# --------------------------------------------------------------------------- precision


@pytest.mark.parametrize("options", WITH_WEIGHTS, ids=WEIGHTS_IDS)
def test_scores_and_weights_are_float32_under_bf16_autocast(options):
    """The base class computes every variant's scores and softmax in float32 with autocast off,
    from bf16 inputs too; the context keeps the values' dtype. In eval mode, so that the
    reference call gives the same weights (hard attention samples in training)."""
    attn = make(options).eval()
    query, keys, values, mask = inputs()
    seen = {}
    score = attn.score

    def spy(query, keys_p, state):
        seen["autocast"] = torch.is_autocast_enabled("cpu")
        seen["inputs"] = (query.dtype, keys_p.dtype)
        out = score(query, keys_p, state)
        seen["scores"] = out.dtype
        return out

    attn.score = spy
    with torch.autocast("cpu", dtype=torch.bfloat16):
        keys_p = attn.prepare(keys.bfloat16())
        state = AttentionState(step=1, src_lengths=mask.sum(-1))
        context, weights = attn(query.bfloat16(), keys_p, values.bfloat16(), mask, state)
    assert seen == {
        "autocast": False,
        "inputs": (torch.float32, torch.float32),
        "scores": torch.float32,
    }
    assert weights.dtype == torch.float32 and context.dtype == torch.bfloat16
    if options.get("mode") != "predictive":
        torch.testing.assert_close(weights.sum(-1), torch.ones(B, T), rtol=0, atol=1e-6)
    # the same as an fp32 run on the same (bf16-rounded) inputs
    del attn.score
    reference = attn.attention_weights(
        query.bfloat16().float(),
        keys_p.float(),
        mask,
        AttentionState(step=1, src_lengths=mask.sum(-1)),
    )
    torch.testing.assert_close(weights, reference, rtol=0, atol=1e-6)


def test_paper_wirings():
    assert {cls.paper_wiring for cls in ATTENTIONS.values()} <= {"bahdanau", "luong"}
    papers = {
        "none": "bahdanau",
        "additive": "bahdanau",
        "content": "bahdanau",
        "multiplicative": "luong",
        "local": "luong",
        "location": "luong",
        "hard": "bahdanau",
    }
    for name, wiring in papers.items():
        assert attention_class(name).paper_wiring == wiring, name


def test_labels_and_range_checks_of_the_variants():
    """What compare and validation read from the classes (their output is unchanged)."""
    assert attention_class("multiplicative").label({"score": "dot"}) == "multiplicative/dot"
    assert attention_class("local").label({"mode": "monotonic", "score": "general"}) == (
        "local-m/general"
    )
    assert attention_class("local").label({"mode": "predictive", "score": "dot"}) == "local-p/dot"
    assert (
        attention_class("local").label({"mode": "monotonic", "score": "general", "window": 4})
        == "local-m/general D=4"
    )  # the window ablation's runs are told apart
    assert (
        attention_class("local").label({"mode": "monotonic", "score": "general", "window": 10})
        == "local-m/general"
    )
    assert attention_class("additive").label({"attn_size": 3}) == "additive"
    assert attention_class("local").check_options({"window": 0}) == [
        "attention.window must be >= 1, got 0"
    ]
    assert attention_class("additive").check_options({"attn_size": None}) == []
    assert attention_class("location").check_options({"max_src_len": None}) == [
        "attention.max_src_len must be set (>= 1)"
    ]
    for name, cls in ATTENTIONS.items():  # every registered variant accepts its defaults
        defaults = {f.name: f.default for f in fields(cls.schema) if f.name != "name"}
        assert cls.check_options(defaults) == [], name
        assert cls.name == name and cls.schema.name == name
