"""Additive (concat / MLP) attention of Bahdanau et al. (2015)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from .base import Attention, AttentionConfig, AttentionState, at_least
from .registry import register_attention


@dataclass
class AdditiveAttentionConfig(AttentionConfig):
    name: str = "additive"
    attn_size: int | None = None  # size of the tanh layer; None: the decoder hidden size


@register_attention("additive", schema=AdditiveAttentionConfig)
class AdditiveAttention(Attention):
    """e_ts = v^T tanh(W_q s_t + W_k h_s)   (Eq. 6 and App. A.1.2 in Bahdanau et al. 2015,
    there e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j)).

    W_k h (the U_a h_j of the paper) does not depend on the decoder step: ``prepare`` computes
    it once per sentence. Weights: masked softmax over real source positions (Eq. 6).

    Parameters: W_q (attn_size, query_size) with bias, W_k (attn_size, key_size), v (attn_size,).
    attn_size defaults to query_size (the decoder hidden size). Paper wiring: 'bahdanau'.
    """

    paper_wiring: ClassVar[str] = "bahdanau"

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> list[str]:
        return at_least(options, "attn_size", 1, optional=True)

    def __init__(self, *, query_size: int, key_size: int, attn_size: int | None = None) -> None:
        super().__init__(query_size=query_size, key_size=key_size)
        attn_size = query_size if attn_size is None else attn_size
        if attn_size < 1:
            raise ValueError(f"attention.attn_size must be >= 1, got {attn_size}")
        self.query_proj = nn.Linear(query_size, attn_size)  # W_q, carries the one bias
        self.key_proj = nn.Linear(key_size, attn_size, bias=False)  # W_k (U_a)
        self.v = nn.Linear(attn_size, 1, bias=False)  # v_a

    def prepare(self, keys: Tensor) -> Tensor:
        """(B, S, key_size) -> W_k h: (B, S, attn_size)."""
        return self.key_proj(keys)

    def score(self, query: Tensor, keys_p: Tensor, state: AttentionState) -> Tensor:
        """(B, T, query_size), (B, S, attn_size) -> (B, T, S)."""
        q = self.query_proj(query)  # (B, T, A)
        hidden = (q.unsqueeze(2) + keys_p.unsqueeze(1)).tanh()  # (B, T, S, A)
        return self.v(hidden).squeeze(-1)  # (B, T, S)
