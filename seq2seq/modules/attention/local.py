"""Local attention of Luong et al. (2015), Sec. 3.2: local-m (monotonic) and local-p (predictive)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import torch
from torch import Tensor, nn

from .base import (
    AttentionConfig,
    AttentionState,
    at_least,
    check_choice,
    enum_value,
    masked_softmax,
)
from .multiplicative import MultiplicativeAttention, Scale, Score, score_label
from .registry import register_attention


class LocalMode(str, Enum):
    monotonic = "monotonic"  # local-m
    predictive = "predictive"  # local-p


MODES = tuple(mode.value for mode in LocalMode)  # ("monotonic", "predictive")


@dataclass
class LocalAttentionConfig(AttentionConfig):
    name: str = "local"
    mode: LocalMode = LocalMode.predictive
    window: int = 10  # D: half-width of the window [p_t - D, p_t + D]
    score: Score = Score.general
    scale: Scale | None = None  # temperature; None: what score implies (sqrt for scaled_dot)


@register_attention(
    "local",
    schema=LocalAttentionConfig,
    presets={"local_m": {"mode": "monotonic"}, "local_p": {"mode": "predictive"}},
)
class LocalAttention(MultiplicativeAttention):
    """Attend only to the window [p_t - D, p_t + D] around an aligned position p_t
    (Sec. 3.2 of Luong et al. 2015). Source positions s are 0-based.

    local-m (mode=monotonic): p_t = t, the decoder step (for a (B, T, *) query, row i is step
        ``state.step + i``), clamped to the last real token S - 1 so a target longer than its
        source still attends somewhere. Weights: softmax of the score (Eq. 8) over the real
        positions inside the window (Eq. 7); they sum to 1.
    local-p (mode=predictive): p_t = S * sigmoid(v_p^T tanh(W_p h_t)) (Eq. 9), S = that
        sentence's source length; a_t(s) = softmax_window(score)(s) * exp(-(s - p_t)^2 / (2 sigma^2)),
        sigma = D / 2 (Eq. 10). Following the paper, the Gaussian multiplies the softmax and the
        weights are NOT renormalised: they sum to at most 1.

    Weights are exactly 0 outside |s - p_t| <= D and on padding. Scores are computed for all S
    positions and masked (simple, and cheap for sentence-length sources).
    score: dot | general | scaled_dot (the inner score of Eq. 8) and scale: none | sqrt | learned
    (its temperature; default what the score implies), exactly as for MultiplicativeAttention,
    whose scores (and key projection done once per sentence) these are; this class adds the
    window. W_p: (query_size, query_size), v_p: (query_size,). Paper wiring: 'luong'.
    The centres p_t are computed in ``step_state``, in float32 like the scores.
    """

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> list[str]:
        return at_least(options, "window", 1)

    @classmethod
    def label(cls, options: Mapping[str, Any]) -> str:
        mode = "m" if enum_value(options.get("mode")) == "monotonic" else "p"
        label = f"local-{mode}/{score_label(options)}"  # local-m/general
        window = options.get("window")
        default = cls.schema.window if hasattr(cls, "schema") else None
        # a window other than the default is part of what was trained (experiment=local_window)
        return label if window is None or window == default else f"{label} D={window}"

    def __init__(
        self,
        *,
        query_size: int,
        key_size: int,
        mode: str = "predictive",
        window: int = 10,
        score: str = "general",
        scale: str | None = None,
    ) -> None:
        super().__init__(query_size=query_size, key_size=key_size, score=score, scale=scale)
        self.mode = check_choice("attention.mode", mode, MODES)
        if window < 1:
            raise ValueError(f"attention.window must be >= 1, got {window}")
        self.window = window
        self.sigma = window / 2.0
        if self.mode == "predictive":
            self.w_p = nn.Linear(query_size, query_size, bias=False)  # W_p
            self.v_p = nn.Linear(query_size, 1, bias=False)  # v_p

    def centers(self, query: Tensor, mask: Tensor, state: AttentionState) -> Tensor:
        """Aligned positions p_t: (B, T) float32."""
        lengths = state.lengths(mask).to(torch.float32).unsqueeze(1)  # (B, 1)
        if self.mode == "predictive":
            gate = self.v_p(torch.tanh(self.w_p(query))).squeeze(-1)  # (B, T)
            return lengths * torch.sigmoid(gate.float())  # Eq. 9
        steps = torch.arange(query.size(1), device=query.device, dtype=torch.float32) + state.step
        return torch.minimum(steps.unsqueeze(0), lengths - 1)  # (B, T)

    def normalize(self, scores: Tensor, mask: Tensor, state: AttentionState) -> Tensor:
        """(B, T, S) scores, (B, S) mask -> (B, T, S) weights. Needs ``state.extras['centers']``
        (B, T), which ``step_state`` sets from ``centers()``."""
        centers = state.extras["centers"]  # (B, T)
        positions = torch.arange(scores.size(-1), device=scores.device, dtype=torch.float32)
        dist = positions.view(1, 1, -1) - centers.unsqueeze(-1)  # (B, T, S): s - p_t
        in_window = (dist.abs() <= self.window) & mask.unsqueeze(1)  # (B, T, S)
        weights = masked_softmax(scores, in_window)  # Eq. 7 restricted to the window
        if self.mode == "predictive":
            gauss = torch.exp(dist.square() / (-2.0 * self.sigma**2))  # (B, T, S)
            weights = weights * gauss.to(weights.dtype)  # Eq. 10, not renormalised
        return weights

    def step_state(self, query: Tensor, mask: Tensor, state: AttentionState) -> AttentionState:
        """A copy of ``state`` with ``extras['centers']`` = ``centers()`` (B, T), which
        ``normalize`` reads."""
        return replace(state, extras={**state.extras, "centers": self.centers(query, mask, state)})

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mode={self.mode}, window={self.window}"
