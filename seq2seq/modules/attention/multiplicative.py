"""Multiplicative attention (Luong et al. 2015): dot, general and scaled dot (Vaswani et al. 2017)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

from torch import Tensor, nn

from .base import Attention, AttentionConfig, AttentionState
from .registry import register_attention


class Score(str, Enum):
    dot = "dot"
    general = "general"
    scaled_dot = "scaled_dot"


SCORES = tuple(score.value for score in Score)  # ("dot", "general", "scaled_dot")
_DOT_SCORES = ("dot", "scaled_dot")


def _value(option: Any) -> Any:
    return getattr(option, "value", option)  # an enum member from a DictConfig, or as given


def check_score(score: str) -> str:
    if score not in SCORES:
        raise ValueError(f"unknown attention score {score!r}; valid: {', '.join(SCORES)}")
    return score


class BilinearScore(nn.Module):
    """The score functions of Eq. 8 in Luong et al. 2015, shared with local attention.

        dot         s^T h                  needs query_size == key_size
        general     s^T W h                W: (query_size, key_size), no bias
        scaled_dot  s^T h / sqrt(d)        d = key_size (Vaswani et al. 2017, Eq. 1)

    Everything that touches only the keys (W h, the 1/sqrt(d) scale) is done once per sentence
    in ``prepare``, so a step's score is a single batched matmul.
    """

    def __init__(self, *, score: str, query_size: int, key_size: int) -> None:
        super().__init__()
        self.score = check_score(score)
        if score in _DOT_SCORES and query_size != key_size:
            raise ValueError(
                f"attention.score={score} needs query size == key size, got {query_size} != "
                f"{key_size}; use score=general or project the keys to {query_size}"
            )
        self.proj = (
            nn.Linear(key_size, query_size, bias=False) if score == "general" else nn.Identity()
        )
        self.scale = 1.0 / math.sqrt(key_size) if score == "scaled_dot" else 1.0

    def prepare(self, keys: Tensor) -> Tensor:
        """(B, S, key_size) -> (B, S, query_size): W h (general), h / sqrt(d) (scaled_dot), h (dot)."""
        keys_p = self.proj(keys)
        return keys_p * self.scale if self.scale != 1.0 else keys_p

    def forward(self, query: Tensor, keys_p: Tensor) -> Tensor:
        """(B, T, query_size), (B, S, query_size) -> (B, T, S)."""
        return query @ keys_p.transpose(1, 2)

    def extra_repr(self) -> str:
        return f"score={self.score}"


@dataclass
class MultiplicativeAttentionConfig(AttentionConfig):
    name: str = "multiplicative"
    score: Score = Score.general


@register_attention(
    "multiplicative",
    schema=MultiplicativeAttentionConfig,
    presets={score.value: {"score": score.value} for score in Score},  # dot, general, scaled_dot
)
class MultiplicativeAttention(Attention):
    """Global multiplicative attention, Eq. 8 in Luong et al. 2015:
    score(h_t, h_s) = h_t^T h_s (dot) | h_t^T W_a h_s (general) | h_t^T h_s / sqrt(d) (scaled_dot,
    Vaswani et al. 2017); a_t = softmax over the real source positions (Eq. 7).

    dot and scaled_dot need query_size == key_size (a ValueError otherwise); the RNN model
    projects its (bidirectional) encoder states to the decoder size once per sentence, see
    ``required_key_size``. Paper wiring: 'luong'.
    """

    paper_wiring: ClassVar[str] = "luong"

    @classmethod
    def label(cls, options: Mapping[str, Any]) -> str:
        return f"{cls.name}/{_value(options.get('score'))}"  # multiplicative/dot

    def __init__(self, *, query_size: int, key_size: int, score: str = "general") -> None:
        super().__init__(query_size=query_size, key_size=key_size)
        self.scorer = BilinearScore(score=score, query_size=query_size, key_size=key_size)

    @classmethod
    def required_key_size(cls, *, query_size: int, key_size: int, **options) -> int:
        score = check_score(options.get("score", "general"))
        return query_size if score in _DOT_SCORES else key_size

    def prepare(self, keys: Tensor) -> Tensor:
        """(B, S, key_size) -> (B, S, query_size)."""
        return self.scorer.prepare(keys)

    def score(self, query: Tensor, keys_p: Tensor, state: AttentionState) -> Tensor:
        """(B, T, query_size), (B, S, query_size) -> (B, T, S)."""
        return self.scorer(query, keys_p)
