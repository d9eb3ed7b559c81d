"""Multiplicative attention (Luong et al. 2015): dot, general and scaled dot (Vaswani et al. 2017),
each with a temperature chosen apart from the score's form (``scale``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .base import Attention, AttentionConfig, AttentionState, check_choice, enum_value
from .registry import register_attention


class Score(str, Enum):
    dot = "dot"
    general = "general"
    scaled_dot = "scaled_dot"


class Scale(str, Enum):
    """The temperature tau the score is divided by."""

    none = "none"  # tau = 1
    sqrt = "sqrt"  # tau = sqrt(d) (Vaswani et al. 2017)
    learned = "learned"  # tau = exp(a), one learned scalar, a initialised at log(sqrt(d))


SCORES = tuple(score.value for score in Score)  # ("dot", "general", "scaled_dot")
SCALES = tuple(scale.value for scale in Scale)  # ("none", "sqrt", "learned")
_DOT_SCORES = ("dot", "scaled_dot")


def implied_scale(score: str) -> str:
    """The temperature a score form implies when ``scale`` is unset: sqrt for scaled_dot (its
    definition), none for dot and general (Luong et al. 2015)."""
    return "sqrt" if enum_value(score) == "scaled_dot" else "none"


def resolve_scale(scale: str | None, score: str) -> str:
    """``scale``, or the one ``score`` implies when it is None; ValueError if unknown."""
    scale = implied_scale(score) if scale is None else scale
    return check_choice("attention.scale", scale, SCALES)


def score_label(options: Mapping[str, Any]) -> str:
    """``dot``, or ``dot/learned`` when the scale is not the one the score implies."""
    score = enum_value(options.get("score"))
    scale = enum_value(options.get("scale"))
    return score if scale in (None, implied_scale(score)) else f"{score}/{scale}"


def compared_directly(options: Mapping[str, Any]) -> str | None:
    """The reason dot and scaled_dot need key_size == query_size (see
    ``Attention.compares_query_and_keys``), None for general."""
    score = enum_value(options.get("score", "general"))
    if score in _DOT_SCORES:
        return f"attention.score={score} compares decoder and encoder states directly"
    return None


class BilinearScore(nn.Module):
    """The score functions of Eq. 8 in Luong et al. 2015, shared with local attention, divided
    by a temperature tau:

        dot         s^T h / tau            no parameter at all; needs query_size == key_size
        general     s^T W h / tau          W: (query_size, key_size), no bias
        scaled_dot  s^T h / tau            dot whose default tau is sqrt(d) (Vaswani et al. 2017)

        scale=none     tau = 1             (default of dot and general)
        scale=sqrt     tau = sqrt(d)       (default of scaled_dot)
        scale=learned  tau = exp(a)        one learned scalar ``log_temperature`` = a,
                                           initialised at log(sqrt(d))

    d = query_size, the width of the dot product. ``learned`` starts at sqrt(d), i.e. exactly
    where scaled_dot starts, rather than at 1: unscaled products of 512-wide states saturate
    the softmax (near one-hot weights, no gradient to most positions), so starting at tau = 1
    would begin in that regime; the model is free to sharpen from there. The score form and
    the temperature are independent: scaled_dot with scale=none is dot. W h is computed once
    per sentence in ``prepare``; the temperature is applied to the (float32) scores.
    """

    def __init__(
        self, *, score: str, query_size: int, key_size: int, scale: str | None = None
    ) -> None:
        super().__init__()
        self.score = check_choice("attention.score", score, SCORES)
        self.scale = resolve_scale(scale, self.score)
        if self.score in _DOT_SCORES and query_size != key_size:
            raise ValueError(
                f"{compared_directly({'score': self.score})}, so their widths must match: got "
                f"query size {query_size} != key size {key_size}; use score=general"
            )
        self.proj = (
            nn.Linear(key_size, query_size, bias=False)
            if self.score == "general"
            else nn.Identity()
        )
        self.inv_sqrt_d = 1.0 / math.sqrt(query_size)
        if self.scale == "learned":
            self.log_temperature = nn.Parameter(torch.tensor(math.log(math.sqrt(query_size))))

    def temperature(self) -> Tensor | float:
        """tau (a float, or a 0-dim tensor for scale=learned)."""
        if self.scale == "learned":
            return self.log_temperature.exp()
        return 1.0 / self.inv_sqrt_d if self.scale == "sqrt" else 1.0

    def prepare(self, keys: Tensor) -> Tensor:
        """(B, S, key_size) -> (B, S, query_size): W h (general), h (dot, scaled_dot)."""
        return self.proj(keys)

    def forward(self, query: Tensor, keys_p: Tensor) -> Tensor:
        """(B, T, query_size), (B, S, query_size) -> (B, T, S) scores / tau."""
        scores = query @ keys_p.transpose(1, 2)
        if self.scale == "sqrt":
            return scores * self.inv_sqrt_d
        if self.scale == "learned":
            return scores * torch.exp(-self.log_temperature).to(scores.dtype)
        return scores

    def extra_repr(self) -> str:
        return f"score={self.score}, scale={self.scale}"


@dataclass
class MultiplicativeAttentionConfig(AttentionConfig):
    name: str = "multiplicative"
    score: Score = Score.general
    scale: Scale | None = None  # temperature; None: what score implies (sqrt for scaled_dot)


@register_attention(
    "multiplicative",
    schema=MultiplicativeAttentionConfig,
    presets={
        "dot": {"score": "dot", "model.split_directions": True},
        "general": {"score": "general"},
        # general's form at scaled_dot's temperature: form against temperature
        "general_sqrt": {"score": "general", "scale": "sqrt"},
        "scaled_dot": {"score": "scaled_dot", "model.split_directions": True},
    },
)
class MultiplicativeAttention(Attention):
    """Global multiplicative attention, Eq. 8 in Luong et al. 2015:
    score(h_t, h_s) = h_t^T h_s (dot) | h_t^T W_a h_s (general) | h_t^T h_s / sqrt(d) (scaled_dot,
    Vaswani et al. 2017), divided by the temperature ``scale`` chooses (see BilinearScore);
    a_t = softmax over the real source positions (Eq. 7).

    dot and scaled_dot have no parameter between decoder and encoder states (with
    scale=none/sqrt the module has no parameter at all), so they need query_size == key_size:
    the RNN model's encoder must be as wide as its decoder (``model.split_directions=true``
    or a unidirectional encoder), which their presets set; a mismatch is refused before any
    work (``compares_query_and_keys``). Paper wiring: 'luong'.
    """

    paper_wiring: ClassVar[str] = "luong"

    @classmethod
    def label(cls, options: Mapping[str, Any]) -> str:
        return f"{cls.name}/{score_label(options)}"  # multiplicative/dot, .../dot/learned

    @classmethod
    def compares_query_and_keys(cls, options: Mapping[str, Any]) -> str | None:
        return compared_directly(options)

    def __init__(
        self, *, query_size: int, key_size: int, score: str = "general", scale: str | None = None
    ) -> None:
        super().__init__(query_size=query_size, key_size=key_size)
        self.scorer = BilinearScore(
            score=score, query_size=query_size, key_size=key_size, scale=scale
        )

    def prepare(self, keys: Tensor) -> Tensor:
        """(B, S, key_size) -> (B, S, query_size)."""
        return self.scorer.prepare(keys)

    def score(self, query: Tensor, keys_p: Tensor, state: AttentionState) -> Tensor:
        """(B, T, query_size), (B, S, query_size) -> (B, T, S)."""
        return self.scorer(query, keys_p)
