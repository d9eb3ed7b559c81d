"""Hard attention (Xu et al. 2015): sampling follows the weights, the REINFORCE estimator is
unbiased with the right sign, the straight-through Gumbel path passes the relaxed gradient,
decoding is argmax (or the expectation), and the options are checked."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seq2seq.decoding import greedy_search
from seq2seq.decoding.beam import beam_search
from seq2seq.models.rnn import RNNSeq2Seq
from seq2seq.modules.attention import (
    AttentionState,
    attention_class,
    build_attention,
    preset_options,
)

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 6


def make(seed: int = 0, **options):
    torch.manual_seed(seed)
    return build_attention(name="hard", query_size=SIZE, key_size=SIZE, **options)


def chi_square_p_value(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson's chi-square goodness of fit of ``counts`` (k,) to ``probs`` (k,), all > 0:
    P(X >= statistic) for X ~ chi^2(k - 1)."""
    expected = counts.sum() * probs.detach().double()
    statistic = ((counts.double() - expected) ** 2 / expected).sum()
    dof = torch.tensor(float(probs.numel() - 1), dtype=torch.float64)
    return float(torch.special.gammaincc(dof / 2, statistic / 2))


def one_query_many_rows(rows: int, src_len: int = 5, real: int = 4, seed: int = 1):
    """The same query and source ``rows`` times over (B = rows, T = 1); the last
    ``src_len - real`` positions are padding."""
    gen = torch.Generator().manual_seed(seed)
    query = torch.randn(1, 1, SIZE, generator=gen).expand(rows, 1, SIZE)
    keys = (torch.randn(1, src_len, SIZE, generator=gen) * 2).expand(rows, src_len, SIZE)
    values = torch.eye(src_len, SIZE).expand(rows, src_len, SIZE)  # context row s = e_s
    mask = (torch.arange(src_len) < real).expand(rows, src_len)
    return query, keys, values, mask


# --------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("estimator", ["reinforce", "gumbel"])
def test_sampled_positions_follow_the_weights(estimator):
    """Chi-square on 20,000 draws: the one-hot positions are distributed as alpha (REINFORCE:
    multinomial; gumbel: Gumbel-max, exact for any temperature), never on padding; and the
    same test rejects draws that follow other weights (it has power)."""
    attn = make(estimator=estimator, expected_context_prob=0.0, temperature=0.5).train()
    rows = 20_000
    query, keys, values, mask = one_query_many_rows(rows)
    keys_p = attn.prepare(keys)
    torch.manual_seed(3)
    context, weights = attn(query, keys_p, values, mask)
    probs = attn.distribution(query[:1], keys_p[:1], mask[:1], AttentionState())[0, 0]  # (S,)
    assert (probs[:4] > 0.05).all() and (probs[4:] == 0).all()
    assert ((weights == 0) | (weights - 1).abs().lt(1e-6)).all()  # one-hot rows
    torch.testing.assert_close(weights.sum(-1), torch.ones(rows, 1))
    positions = weights[:, 0].argmax(-1)
    torch.testing.assert_close(context[:, 0], values[0][positions])  # the sampled state
    counts = torch.bincount(positions, minlength=5)
    assert counts[4] == 0  # padding is never drawn
    assert chi_square_p_value(counts[:4], probs[:4]) > 1e-3
    flatter = (probs[:4] + 0.05) / (probs[:4] + 0.05).sum()  # a few points of mass moved
    assert chi_square_p_value(counts[:4], flatter) < 1e-6


def test_positions_without_weight_are_never_chosen(monkeypatch):
    """Outside a local window and on padding the weight is exactly 0 whatever the estimator or
    decode; a row with no weight at all (which no shipped variant produces) stays all zero."""
    query, keys, values, mask = one_query_many_rows(50, src_len=5, real=3)
    for estimator in ("reinforce", "gumbel"):
        attn = make(score="local_m", estimator=estimator, expected_context_prob=0.0)
        attn.soft.window = 1  # step 0: the window is positions 0 and 1
        for training in (True, False):
            _, weights = attn.train(training)(query, attn.prepare(keys), values, mask)
            assert (weights[..., 2:] == 0).all() and weights[..., :2].sum(-1).eq(1).all()
        empty = torch.zeros(2, 1, 5)
        empty[0, 0, 1] = 1.0  # one row with its weight, one without any
        monkeypatch.setattr(attn, "distribution", lambda *args, rows=empty: rows)
        for training in (True, False):
            weights = attn.train(training).attention_weights(None, None, mask[:2], None)
            assert torch.equal(weights, empty)
        attn.eval()


# --------------------------------------------------------------------------- REINFORCE


def test_reinforce_gradient_is_unbiased_with_a_known_expected_gradient():
    """One decoder step, one distribution alpha(W) shared by N rows, a fixed NLL f_s for
    position s (the context is e_s, the NLL is c . f). The expected loss is
    E[NLL] = sum_s alpha_s f_s, whose exact gradient autograd gives from alpha; the estimator
    (the sampled context carries no gradient to W, the REINFORCE term does) must match it
    within its standard error: with the baseline at 0, at the rewards' level and far off,
    since any baseline that does not depend on the sample leaves it unbiased. A flipped sign
    would give minus the gradient."""
    attn = make(expected_context_prob=0.0, entropy_weight=0.0).train()
    params = list(attn.parameters())
    f = torch.tensor([2.0, 0.5, 3.0, 1.0, 0.0])  # NLL of each position; position 4 is padding
    query, keys, values, mask = one_query_many_rows(1)
    probs = attn.distribution(query, attn.prepare(keys), mask, AttentionState())[0, 0]
    exact = torch.autograd.grad((probs * f).sum(), params)
    exact = torch.cat([g.flatten() for g in exact])
    chunks, rows = 40, 5_000
    query, keys, values, mask = one_query_many_rows(rows)
    for baseline in (0.0, -1.5, -20.0):  # b per token; the reward is -f_s, L = 1
        estimates = []
        torch.manual_seed(11)
        for _ in range(chunks):
            with torch.no_grad():
                attn.reward_baseline.fill_(baseline)
                attn.baseline_updates.fill_(1)
            context, _ = attn(query, attn.prepare(keys), values, mask)
            nll = context[:, 0, :5] @ f  # (N,): f of the sampled position
            aux = attn.auxiliary_loss(torch.ones(rows, 1, dtype=torch.bool))
            loss = (nll.sum() + aux(nll.detach().unsqueeze(1))) / rows
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            grads = [
                torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)
            ]
            estimates.append(torch.cat([g.flatten() for g in grads]))
        estimates = torch.stack(estimates)  # (chunks, P)
        mean = estimates.mean(0)
        stderr = estimates.std(0) / math.sqrt(chunks)
        z = (mean - exact).abs() / (stderr + 1e-8)
        assert z.max() < 5, (baseline, z.max())
        cosine = F.cosine_similarity(mean, exact, dim=0)
        assert cosine > 0.95, (baseline, cosine)
    # the sampled context alone (no REINFORCE term) gives W no gradient at all
    context, _ = attn(query, attn.prepare(keys), values, mask)
    attn.auxiliary_loss(torch.ones(rows, 1, dtype=torch.bool))  # ends the episode
    grads = torch.autograd.grad((context[:, 0, :5] @ f).sum(), params, allow_unused=True)
    assert all(g is None or g.abs().max() == 0 for g in grads)


def test_reinforce_term_value_baseline_and_entropy():
    """The term is -(R - b L) sum_t log alpha_{t,s_t} - lambda_e sum_t H[alpha_t] over the
    sampled sentences' real steps; b moves as b <- d b + (1 - d) mean(R / L), starting at the
    first batch's mean, and only in training."""
    attn = make(expected_context_prob=0.0, entropy_weight=0.3, baseline_decay=0.8).train()
    gen = torch.Generator().manual_seed(5)
    B, S, T = 3, 4, 3
    query, keys = torch.randn(B, T, SIZE, generator=gen), torch.randn(B, S, SIZE, generator=gen)
    tgt_mask = torch.tensor([[True, True, True], [True, True, False], [True, False, False]])
    mask = torch.ones(B, S, dtype=torch.bool)
    nll = torch.tensor([[1.0, 2.0, 0.5], [0.2, 0.4, 0.0], [3.0, 0.0, 0.0]])
    keys_p = attn.prepare(keys)
    _, weights = attn(query, keys_p, keys, mask)
    probs = attn.distribution(query, keys_p, mask, AttentionState()).detach()
    chosen = weights.argmax(-1)  # (B, T)
    log_prob = probs.gather(-1, chosen.unsqueeze(-1)).squeeze(-1).log()
    entropy = -(probs * probs.log()).sum(-1)
    real = tgt_mask.float()
    reward, lengths = -(nll * real).sum(1), real.sum(1)  # (B,) R and L
    b = (reward / lengths).mean()  # the first batch: its own mean
    expected = (
        -((reward - b * lengths)[:, None] * log_prob * real).sum() - 0.3 * (entropy * real).sum()
    )
    term = attn.auxiliary_loss(tgt_mask)(nll)
    torch.testing.assert_close(term, expected)
    torch.testing.assert_close(attn.reward_baseline, b)
    assert attn.baseline_updates == 1
    # the next batch uses b, then moves it
    _, weights = attn(query, keys_p, keys, mask)
    attn.auxiliary_loss(tgt_mask)(nll + 1.0)
    new_mean = (-(((nll + 1.0) * real).sum(1)) / lengths).mean()
    torch.testing.assert_close(attn.reward_baseline, 0.8 * b + 0.2 * new_mean)
    # eval mode: no samples, no term, the baseline stays
    attn.eval()
    attn(query, keys_p, keys, mask)
    assert attn.auxiliary_loss(tgt_mask) is None and attn.baseline_updates == 2
    assert attn.train().auxiliary_loss(tgt_mask) is None  # nothing sampled since


def test_expected_context_is_chosen_per_sentence_for_the_whole_pass():
    """With probability expected_context_prob a sentence uses sum_s alpha_s h_s at every step
    of the forward pass (the model draws it once per source batch, in observe_source); such a
    sentence adds no REINFORCE term. Through a Bahdanau-wired model: one call per step."""
    torch.manual_seed(0)
    model = RNNSeq2Seq.build(
        {"emb_size": 8, "hidden_size": 10, "dropout": 0.0},
        {"name": "hard", "expected_context_prob": 0.5},
        src_vocab_size=12,
        tgt_vocab_size=12,
    ).train()
    B, S, T = 64, 5, 4
    gen = torch.Generator().manual_seed(1)
    src = torch.randint(4, 12, (B, S), generator=gen)
    tgt_in = torch.randint(4, 12, (B, T), generator=gen)
    mask = torch.ones(B, S, dtype=torch.bool)
    out = model(src, mask, tgt_in, torch.ones(B, T, dtype=torch.bool), need_attn=True)
    one_hot = (out.attn_weights == 1).sum(-1) == 1  # (B, T) a sampled row
    per_sentence = one_hot.all(1)
    assert (one_hot.all(1) | ~one_hot.any(1)).all()  # all steps alike within a sentence
    assert 10 < int(per_sentence.sum()) < 54  # about half of 64
    # a sentence with the expected context adds no REINFORCE term, whatever its reward
    nll = torch.rand(B, T, generator=gen)
    term = out.aux_loss(nll)
    assert term.requires_grad and torch.isfinite(term)
    with torch.no_grad():  # the same pass's term again, from a fresh baseline
        model.attention.baseline_updates.zero_()
    other = nll.masked_fill(~per_sentence[:, None], 50.0)  # only the expected ones change
    torch.testing.assert_close(out.aux_loss(other), term)


# --------------------------------------------------------------------------- straight-through


def test_straight_through_gumbel_is_one_hot_forward_and_relaxed_backward():
    """Forward: exactly a one-hot sampled row; backward: the gradient of the relaxed sample
    y_soft = softmax((log alpha + g) / tau) (the same noise g, drawn from the same seed), which
    reaches the score's parameters, the query and the keys."""
    attn = make(estimator="gumbel", temperature=0.7).train()
    gen = torch.Generator().manual_seed(2)
    B, S, T = 4, 6, 3
    query = torch.randn(B, T, SIZE, generator=gen, requires_grad=True)
    keys = torch.randn(B, S, SIZE, generator=gen, requires_grad=True)
    values = torch.randn(B, S, SIZE, generator=gen)
    mask = torch.arange(S)[None, :] < torch.tensor([6, 5, 3, 1])[:, None]
    upstream = torch.randn(B, T, SIZE, generator=gen)
    params = [query, keys, *attn.parameters()]

    torch.manual_seed(9)
    context, weights = attn(query, attn.prepare(keys), values, mask)
    assert ((weights == 0) | (weights - 1).abs().lt(1e-6)).all()
    assert (weights[~mask[:, None, :].expand_as(weights)] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, T))
    got = torch.autograd.grad((context * upstream).sum(), params)

    probs = attn.distribution(query, attn.prepare(keys), mask, AttentionState())
    torch.manual_seed(9)
    gumbel = -torch.empty_like(probs).exponential_().log()
    logits = (probs.clamp_min(1e-30).log() + gumbel) / 0.7
    y_soft = torch.softmax(logits.masked_fill(~mask[:, None, :], -math.inf), -1)
    assert torch.equal(y_soft.argmax(-1), weights.argmax(-1))  # the same sample
    relaxed = torch.autograd.grad(((y_soft @ values) * upstream).sum(), params)
    for name, g, r in zip(
        ["query", "keys", *dict(attn.named_parameters())], got, relaxed, strict=True
    ):
        assert g.abs().sum() > 0, name
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)
    assert attn.auxiliary_loss(torch.ones(B, T, dtype=torch.bool)) is None  # no extra term


# --------------------------------------------------------------------------- decoding


def test_decoding_is_argmax_or_expectation():
    """Eval mode: decode=argmax gives one-hot rows at the most probable position and its
    encoder state as the context; decode=expectation the soft variant's weights and context."""
    gen = torch.Generator().manual_seed(4)
    B, S, T = 3, 5, 2
    query, keys = torch.randn(B, T, SIZE, generator=gen), torch.randn(B, S, SIZE, generator=gen)
    values = torch.randn(B, S, SIZE, generator=gen)
    mask = torch.arange(S)[None, :] < torch.tensor([5, 3, 2])[:, None]
    hard = make(seed=3).eval()
    soft = make(seed=3, decode="expectation").eval()
    additive = build_attention(name="additive", query_size=SIZE, key_size=SIZE)
    additive.load_state_dict(hard.soft.state_dict())
    alpha = additive(query, additive.prepare(keys), values, mask)[1]
    context, weights = hard(query, hard.prepare(keys), values, mask)
    assert torch.equal(weights, F.one_hot(alpha.argmax(-1), S).float())
    torch.testing.assert_close(context, values[torch.arange(B)[:, None], alpha.argmax(-1)])
    context, weights = soft(query, soft.prepare(keys), values, mask)
    torch.testing.assert_close(weights, alpha)
    torch.testing.assert_close(context, alpha @ values)


def test_greedy_and_beam_search_decode_with_one_hot_weights():
    """The decoders treat the weights opaquely: greedy and beam search (its reordering of the
    state) run on a hard-attention model and return one-hot attention rows; beam 1 = greedy."""
    torch.manual_seed(0)
    for wiring in ("bahdanau", "luong"):
        model = RNNSeq2Seq.build(
            {"emb_size": 8, "hidden_size": 10, "dropout": 0.0},
            {"name": "hard", "wiring": wiring},
            src_vocab_size=15,
            tgt_vocab_size=15,
        ).eval()
        gen = torch.Generator().manual_seed(1)
        src = torch.randint(4, 15, (3, 6), generator=gen)
        src_mask = torch.arange(6)[None, :] < torch.tensor([6, 4, 2])[:, None]
        src = src.masked_fill(~src_mask, 0)
        with torch.no_grad():
            greedy = greedy_search(model, src, src_mask, max_len=7, need_attn=True)
            beam1 = beam_search(model, src, src_mask, beam_size=1, max_len=7, need_attn=True)
            beam4 = beam_search(
                model, src, src_mask, beam_size=4, nbest=2, max_len=7, need_attn=True
            )
        for g, (b,) in zip(greedy, beam1, strict=True):
            assert g.tokens == b.tokens
        for hyps in [[g] for g in greedy] + beam4:
            for hyp in hyps:
                assert ((hyp.attn == 0) | (hyp.attn == 1)).all()
                torch.testing.assert_close(hyp.attn.sum(-1), torch.ones(hyp.attn.size(0)))


# --------------------------------------------------------------------------- options


def test_options_are_checked_and_labelled():
    cls = attention_class("hard")
    defaults = {f: getattr(cls.schema, f) for f in ("score", "temperature", "entropy_weight")}
    assert defaults == {"score": "additive", "temperature": 1.0, "entropy_weight": 0.01}
    ok = {
        "score": "additive",
        "temperature": 1.0,
        "entropy_weight": 0.0,
        "baseline_decay": 0.9,
        "expected_context_prob": 0.5,
    }
    assert cls.check_options(ok) == []
    bad = {
        "score": "none",
        "temperature": 0.0,
        "entropy_weight": -1.0,
        "baseline_decay": 1.0,
        "expected_context_prob": 1.5,
    }
    problems = cls.check_options(bad)
    assert problems[0].startswith("unknown attention.score ")
    assert "; valid: additive, " in problems[0]
    assert "'none'" in problems[0] and "hard" not in problems[0].split("got")[0]
    assert problems[1:] == [
        "attention.temperature must be > 0, got 0.0",
        "attention.entropy_weight must be >= 0, got -1.0",
        "attention.baseline_decay must be in [0, 1), got 1.0",
        "attention.expected_context_prob must be in [0, 1], got 1.5",
    ]
    with pytest.raises(ValueError, match=r"^unknown attention\.score 'hard'; valid: additive, "):
        make(score="hard")
    with pytest.raises(
        ValueError, match=r"^unknown attention\.estimator 'policy'; valid: reinforce, gumbel$"
    ):
        make(estimator="policy")
    with pytest.raises(
        ValueError, match=r"^unknown attention\.decode 'mode'; valid: argmax, expectation$"
    ):
        make(decode="mode")
    with pytest.raises(ValueError, match=r"attention.temperature must be > 0, got -1"):
        make(temperature=-1)
    assert cls.label({"score": "additive", "estimator": "reinforce"}) == "hard/additive"
    assert cls.label({"score": "dot", "estimator": "gumbel", "decode": "expectation"}) == (
        "hard/dot/gumbel/expectation"
    )
    # a score with no parameter between decoder and encoder states needs equal widths
    assert cls.compares_query_and_keys({"score": "dot"}).startswith("attention.score=dot")
    assert cls.compares_query_and_keys({"score": "general"}) is None
    assert cls.paper_wiring == "bahdanau" and cls.has_weights


@pytest.mark.parametrize("score", ["additive", "general", "content", "location", "local_p"])
def test_any_soft_score_supplies_the_distribution(score):
    """The soft variant is a child module: its parameters are the only ones, and alpha is its
    weights (renormalised for local-p's Gaussian)."""
    attn = make(score=score, decode="expectation").eval()
    assert isinstance(attn.soft, attention_class(preset_options()[score]["name"]))
    assert {n for n, _ in attn.named_parameters()} == {
        f"soft.{n}" for n, _ in attn.soft.named_parameters()
    }
    gen = torch.Generator().manual_seed(6)
    query, keys = torch.randn(2, 3, SIZE, generator=gen), torch.randn(2, 5, SIZE, generator=gen)
    mask = torch.ones(2, 5, dtype=torch.bool)
    state = AttentionState(src_lengths=mask.sum(-1))
    _, weights = attn(query, attn.prepare(keys), keys, mask, state)
    _, expected = attn.soft(query, attn.soft.prepare(keys), keys, mask, state)
    torch.testing.assert_close(weights, expected)
    attn.train()
    _, sampled = attn(query, attn.prepare(keys), keys, mask, state)
    assert ((sampled == 0) | (sampled == 1) | torch.isclose(sampled, expected)).all()
