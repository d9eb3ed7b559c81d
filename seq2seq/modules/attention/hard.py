"""Hard (stochastic) attention of Xu et al. (2015), Sec. 4.1: one source position per step."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import (
    Attention,
    AttentionConfig,
    AttentionState,
    check_choice,
    enum_value,
    float32_region,
    masked_softmax,
)
from .registry import attention_class, build_attention, preset_options, register_attention


class Estimator(str, Enum):
    """How the gradient reaches the distribution the positions are drawn from."""

    reinforce = "reinforce"  # Xu et al. 2015, Sec. 4.1: score-function estimator
    gumbel = "gumbel"  # straight-through Gumbel-softmax (Jang et al. 2017)


class HardDecode(str, Enum):
    """What the context is outside training (decoding, validation, alignment dumps)."""

    argmax = "argmax"  # the encoder state of the most probable position: one-hot weights
    expectation = "expectation"  # the soft context sum_s alpha_ts h_s (the soft variant's)


ESTIMATORS = tuple(e.value for e in Estimator)  # ("reinforce", "gumbel")
DECODES = tuple(d.value for d in HardDecode)  # ("argmax", "expectation")


@dataclass
class HardAttentionConfig(AttentionConfig):
    name: str = "hard"
    score: str = "additive"  # the preset of a soft variant whose weights are the distribution
    estimator: Estimator = Estimator.reinforce
    decode: HardDecode = HardDecode.argmax
    temperature: float = 1.0  # gumbel: tau of the relaxed sample
    entropy_weight: float = 0.01  # reinforce: lambda_e, weight of the entropy bonus
    baseline_decay: float = 0.9  # reinforce: b <- decay * b + (1 - decay) * reward
    expected_context_prob: float = 0.5  # reinforce: P(a sentence uses the expected context)


def soft_scores() -> list[str]:
    """The presets ``score`` may name: every registered soft variant's (those with weights
    that are not themselves sampled), e.g. additive, dot, general, content, location."""
    return [
        preset
        for preset, options in preset_options().items()
        if attention_class(options["name"]).has_weights
        and not issubclass(attention_class(options["name"]), HardAttention)
    ]


def _soft_options(score: str) -> dict[str, Any]:
    """The options (``name`` first) of the soft variant's preset ``score``; ValueError naming
    the valid presets otherwise."""
    return dict(preset_options()[check_choice("attention.score", score, soft_scores())])


@dataclass
class _Episode:
    """What one training forward pass sampled (REINFORCE), for the auxiliary loss: the calls
    since the model's last ``observe_source``, in decoder order."""

    expected: Tensor  # (B,) bool: the sentences that use the expected context this pass
    log_probs: list[Tensor] = field(default_factory=list)  # (B, T') log p(s_t), per call
    entropies: list[Tensor] = field(default_factory=list)  # (B, T') H[alpha_t], per call


@register_attention(
    "hard",
    schema=HardAttentionConfig,
    presets={"hard": {}, "hard_gumbel": {"estimator": "gumbel"}},
)
class HardAttention(Attention):
    """Stochastic "hard" attention (Xu et al. 2015, Sec. 4.1): at each decoder step one source
    position s_t is drawn from the attention distribution and its encoder state is the context.

        alpha_t = the weights of a soft variant (``score``, a preset: additive by default)
        p(s_t = i | s_<t, x) = alpha_ti                          (Eq. 8)
        c_t = sum_i s_ti h_i = h_{s_t}   (s_t one-hot)           (Eq. 9)

    The objective is the variational lower bound on log p(y | x) (Eq. 10),
        L_s = sum_s p(s | x) log p(y | s, x) <= log p(y | x),
    whose gradient (Eq. 11) is estimated from one sample s~ per sentence (Eq. 12, with the
    baseline and the entropy term of Sec. 4.1):
        dL_s/dW ~ d log p(y | s~, x)/dW + (log p(y | s~, x) - b) d log p(s~ | x)/dW
                  + lambda_e dH[s~]/dW.
    Here, as a loss to minimise (estimator=reinforce, the default):
        loss = NLL(y | s~, x) - (R - b L) sum_t log alpha_{t, s~_t} - lambda_e sum_t H[alpha_t]
    with R = log p(y | s~, x) = -NLL (the sentence's, detached; no label smoothing), L its
    target length. The first term is the ordinary loss (the sampled context's pathwise
    gradient), the second and third come from ``auxiliary_loss`` (the model's ``aux_loss``).
    The baseline b is a moving average, b <- d b + (1 - d) mean(R / L) over the batch's
    sampled sentences (d = ``baseline_decay``, 0.9 in Xu et al.; the first batch starts it at
    its own mean), kept in the buffer ``reward_baseline``, updated in training only. Xu et al.
    average R itself; we average the per-token reward and scale it by each sentence's length,
    since sentence lengths vary (any b that does not depend on the sample keeps the estimator
    unbiased). With probability ``expected_context_prob`` (0.5 in Xu et al.) a sentence uses
    the expected context sum_i alpha_ti h_i at every step of the pass instead of samples
    (deterministic soft attention, trained by backpropagation; no REINFORCE term for it).
    The entropy bonus (``entropy_weight`` = lambda_e) covers the sampled sentences' real steps.

    estimator=gumbel: straight-through Gumbel-softmax (Jang et al. 2017; Maddison et al. 2017)
        y_soft = softmax((log alpha_t + g) / tau),  g_i ~ Gumbel(0, 1),  tau = ``temperature``
        weights = y_hard - stop_gradient(y_soft) + y_soft,  y_hard = one_hot(argmax y_soft)
    i.e. the forward pass uses a sampled one-hot position, the backward pass the relaxed
    sample's gradient; no auxiliary loss (no baseline, entropy or expected context).

    Outside training: decode=argmax (default) takes the most probable position (one-hot
    weights: alignment dumps, AER and beam search see ordinary weights), decode=expectation the
    soft context (the soft variant's weights). In training the returned weights are the ones
    the context was made of (one-hot rows for samples, alpha rows for expected contexts).

    The soft variant is the child module ``soft`` (its parameters are the only ones; its
    ``prepare``, ``step_state``, ``score`` and ``normalize`` are this module's). Rows whose
    weights do not sum to 1 (local-p's Gaussian) are renormalised to give the distribution.
    Shapes as in base.py: query (B, T, query_size), keys_p (B, S, *) = ``soft.prepare(keys)``,
    weights (B, T, S), context (B, T, value_size). Paper wiring: 'bahdanau' (Xu et al. attend
    with h_{t-1} and feed the context to the LSTM and the deep output layer).

    The REINFORCE bookkeeping of one training forward pass (the log-probabilities and
    entropies of every call since the model's ``observe_source``) is held on the module until
    ``auxiliary_loss`` takes it; in eval mode nothing is kept, so decoding holds no state here.
    """

    paper_wiring: ClassVar[str] = "bahdanau"

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> list[str]:
        problems = []
        try:
            check_choice("attention.score", options.get("score"), soft_scores())
        except ValueError as err:
            problems.append(str(err))
        temperature = options.get("temperature")
        if temperature is None or temperature <= 0:
            problems.append(f"attention.temperature must be > 0, got {temperature}")
        weight = options.get("entropy_weight")
        if weight is None or weight < 0:
            problems.append(f"attention.entropy_weight must be >= 0, got {weight}")
        decay = options.get("baseline_decay")
        if decay is None or not 0 <= decay < 1:
            problems.append(f"attention.baseline_decay must be in [0, 1), got {decay}")
        prob = options.get("expected_context_prob")
        if prob is None or not 0 <= prob <= 1:
            problems.append(f"attention.expected_context_prob must be in [0, 1], got {prob}")
        return problems

    @classmethod
    def label(cls, options: Mapping[str, Any]) -> str:
        """``hard/additive``; ``/gumbel`` and ``/expectation`` when those are chosen."""
        parts = [cls.name, str(enum_value(options.get("score", "additive")))]
        if enum_value(options.get("estimator", "reinforce")) != "reinforce":
            parts.append(str(enum_value(options.get("estimator"))))
        if enum_value(options.get("decode", "argmax")) != "argmax":
            parts.append(str(enum_value(options.get("decode"))))
        return "/".join(parts)

    @classmethod
    def compares_query_and_keys(cls, options: Mapping[str, Any]) -> str | None:
        """The soft variant's answer (score=dot: its encoder must be as wide as the decoder)."""
        score = enum_value(options.get("score", "additive"))
        if score not in soft_scores():
            return None  # check_options reports it
        soft = _soft_options(score)
        return attention_class(soft["name"]).compares_query_and_keys(soft)

    def __init__(
        self,
        *,
        query_size: int,
        key_size: int,
        score: str = "additive",
        estimator: str = "reinforce",
        decode: str = "argmax",
        temperature: float = 1.0,
        entropy_weight: float = 0.01,
        baseline_decay: float = 0.9,
        expected_context_prob: float = 0.5,
    ) -> None:
        super().__init__(query_size=query_size, key_size=key_size)
        estimator = check_choice("attention.estimator", estimator, ESTIMATORS)
        decode = check_choice("attention.decode", decode, DECODES)
        score = enum_value(score)
        options = {
            "score": score,
            "temperature": temperature,
            "entropy_weight": entropy_weight,
            "baseline_decay": baseline_decay,
            "expected_context_prob": expected_context_prob,
        }
        problems = [p for p in self.check_options(options) if "attention.score" not in p]
        if problems:
            raise ValueError(problems[0])
        soft = _soft_options(score)  # ValueError naming the valid presets
        self.score_name = score
        self.estimator = estimator
        self.decode = decode
        self.temperature = float(temperature)
        self.entropy_weight = float(entropy_weight)
        self.baseline_decay = float(baseline_decay)
        self.expected_context_prob = float(expected_context_prob)
        self.soft = build_attention(query_size=query_size, key_size=key_size, **soft)
        # b, the moving average of the per-token reward, and how many batches it has seen
        self.register_buffer("reward_baseline", torch.zeros(()))
        self.register_buffer("baseline_updates", torch.zeros((), dtype=torch.long))
        self._episode: _Episode | None = None

    # ------------------------------------------------------------------ the soft variant

    def prepare(self, keys: Tensor) -> Tensor:
        """(B, S, key_size) -> the soft variant's prepared keys (B, S, *)."""
        return self.soft.prepare(keys)

    def step_state(self, query: Tensor, mask: Tensor, state: AttentionState) -> AttentionState:
        return self.soft.step_state(query, mask, state)

    def score(self, query: Tensor, keys_p: Tensor, state: AttentionState) -> Tensor:
        """(B, T, query_size), (B, S, *) -> the soft variant's energies (B, T, S)."""
        return self.soft.score(query, keys_p, state)

    def normalize(self, scores: Tensor, mask: Tensor, state: AttentionState) -> Tensor:
        return self.soft.normalize(scores, mask, state)

    def distribution(
        self, query: Tensor, keys_p: Tensor, mask: Tensor, state: AttentionState
    ) -> Tensor:
        """alpha: the soft variant's weights (B, T, S), float32 (``Attention.attention_weights``
        on this module's ``step_state`` / ``score`` / ``normalize``)."""
        return super().attention_weights(query, keys_p, mask, state)

    def observe_source(self, mask: Tensor) -> None:
        """A new source batch (B, S): in training with REINFORCE a new episode starts, with
        each sentence's draw of whether it uses the expected context; in eval, none."""
        self.soft.observe_source(mask)
        self._episode = None
        if self.training and self.estimator == "reinforce":
            self._episode = self._new_episode(mask.size(0), mask.device)

    def _new_episode(self, batch: int, device: torch.device) -> _Episode:
        expected = torch.rand(batch, device=device) < self.expected_context_prob  # (B,)
        return _Episode(expected)

    # ------------------------------------------------------------------ the weights

    def attention_weights(
        self, query: Tensor, keys_p: Tensor, mask: Tensor, state: AttentionState
    ) -> Tensor:
        """(B, T, S) float32 weights the context is made of: in training a sampled one-hot
        row per step (REINFORCE: alpha rows for sentences drawn to use the expected context;
        gumbel: the straight-through sample), outside training one-hot argmax rows
        (decode=argmax) or alpha (decode=expectation). Rows with no weight stay all zero."""
        weights = self.distribution(query, keys_p, mask, state)  # (B, T, S) float32
        with float32_region(weights):
            if not self.training:
                if self.decode == "expectation":
                    return weights
                return _one_hot(weights.argmax(-1), weights)
            probs = _normalised(weights)
            if self.estimator == "gumbel":
                return self._straight_through(probs)
            return self._sample(weights, probs)

    def _sample(self, weights: Tensor, probs: Tensor) -> Tensor:
        """REINFORCE: draw s_t ~ alpha_t per row, record log alpha_{t, s_t} and H[alpha_t]."""
        batch, rows, src_len = probs.shape
        with torch.no_grad():
            # a row without any weight (an empty local window) draws anything: it stays zero
            drawable = torch.where(probs.sum(-1, keepdim=True) > 0, probs, 1.0)
            index = torch.multinomial(drawable.reshape(-1, src_len), 1).view(batch, rows)
        hard = _one_hot(index, probs)  # (B, T, S)
        tiny = torch.finfo(probs.dtype).tiny
        log_prob = probs.gather(-1, index.unsqueeze(-1)).squeeze(-1).clamp_min(tiny).log()
        entropy = -(probs * probs.clamp_min(tiny).log()).sum(-1)  # (B, T); 0 log 0 = 0
        episode = self._episode
        if episode is None or episode.expected.numel() != batch:  # used without a model
            episode = self._episode = self._new_episode(batch, probs.device)
        episode.log_probs.append(log_prob * hard.sum(-1))  # 0 for a row without weight
        episode.entropies.append(entropy)
        return torch.where(episode.expected.view(batch, 1, 1), weights, hard)

    def _straight_through(self, probs: Tensor) -> Tensor:
        """Gumbel-softmax sample, one-hot forward, relaxed backward: (B, T, S)."""
        support = probs > 0
        tiny = torch.finfo(probs.dtype).tiny
        gumbel = -torch.empty_like(probs).exponential_().clamp_min(tiny).log()  # Gumbel(0, 1)
        logits = (probs.clamp_min(tiny).log() + gumbel) / self.temperature
        soft = masked_softmax(logits, support)  # (B, T, S), exactly 0 off the support
        hard = _one_hot(soft.argmax(-1), soft)
        return hard - soft.detach() + soft

    # ------------------------------------------------------------------ the REINFORCE term

    def auxiliary_loss(self, tgt_mask: Tensor) -> Callable[[Tensor], Tensor] | None:
        """After a training forward pass with REINFORCE: the function of the per-token NLL
        (B, T) that returns -(R - b L) sum_t log alpha_{t, s_t} - lambda_e sum_t H[alpha_t],
        summed over the sampled sentences (see the class docstring); it updates the baseline
        when called. ``tgt_mask`` (B, T) bool: the real target positions (one decoder step
        each). None in eval mode, for gumbel, and when nothing was sampled."""
        episode, self._episode = self._episode, None
        if not self.training or episode is None or not episode.log_probs:
            return None
        log_prob = torch.cat(episode.log_probs, dim=1)  # (B, T)
        entropy = torch.cat(episode.entropies, dim=1)  # (B, T)
        if log_prob.shape != tgt_mask.shape:
            raise ValueError(
                f"hard attention sampled {tuple(log_prob.shape)} positions since the last "
                f"source batch, but the target mask is {tuple(tgt_mask.shape)}"
            )
        return partial(self._reinforce_loss, log_prob, entropy, ~episode.expected, tgt_mask)

    def _reinforce_loss(
        self, log_prob: Tensor, entropy: Tensor, sampled: Tensor, tgt_mask: Tensor, nll: Tensor
    ) -> Tensor:
        """log_prob, entropy (B, T), sampled (B,) bool, tgt_mask (B, T) bool, nll (B, T)
        per-token NLL -> the scalar REINFORCE + entropy term; updates the baseline."""
        real = tgt_mask.to(log_prob.dtype)  # (B, T)
        with torch.no_grad():
            lengths = real.sum(1)  # (B,) L
            reward = -(nll.to(real.dtype) * real).sum(1)  # (B,) R = log p(y | s~, x)
            chosen = sampled & (lengths > 0)  # (B,)
            baseline = self._baseline(reward / lengths.clamp_min(1), chosen)  # b, per token
            advantage = torch.where(chosen, reward - baseline * lengths, 0.0)  # (B,)
        surrogate = -(advantage.unsqueeze(1) * log_prob * real).sum()
        bonus = (entropy * real * chosen.unsqueeze(1).to(real.dtype)).sum()
        return surrogate - self.entropy_weight * bonus

    def _baseline(self, per_token: Tensor, chosen: Tensor) -> Tensor:
        """The baseline for this batch (the average of the batches before it; for the first
        batch its own mean), then the update b <- d b + (1 - d) mean(per_token[chosen])."""
        count = chosen.sum()
        batch_mean = (per_token * chosen).sum() / count.clamp_min(1)
        first = self.baseline_updates == 0
        baseline = torch.where(first, batch_mean, self.reward_baseline)
        if self.training:
            decay = self.baseline_decay
            moved = torch.where(first, batch_mean, decay * baseline + (1 - decay) * batch_mean)
            self.reward_baseline.copy_(torch.where(count > 0, moved, self.reward_baseline))
            self.baseline_updates.add_((count > 0).long())
        return baseline

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, score={self.score_name}, estimator={self.estimator}, "
            f"decode={self.decode}"
        )


def _normalised(weights: Tensor) -> Tensor:
    """(B, T, S) weights -> a distribution per row (rows with no weight stay zero)."""
    total = weights.sum(-1, keepdim=True)
    return weights / total.clamp_min(torch.finfo(weights.dtype).tiny)


def _one_hot(index: Tensor, like: Tensor) -> Tensor:
    """(B, T) positions -> (B, T, S) one-hot rows in ``like``'s dtype, zero where ``like``'s
    row has no weight."""
    hot = F.one_hot(index, like.size(-1)).to(like.dtype)
    return hot * (like.sum(-1, keepdim=True) > 0).to(like.dtype)
