"""No attention: the decoder sees only the encoder summary (Sutskever et al. 2014, Cho et al. 2014)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from .base import Attention, AttentionConfig, AttentionState
from .registry import register_attention


@dataclass
class NoAttentionConfig(AttentionConfig):
    name: str = "none"


@register_attention("none", schema=NoAttentionConfig)
class NoAttention(Attention):
    """The encoder-decoder without attention: the source reaches the decoder only through the
    bridged final encoder state (Sutskever et al. 2014; Cho et al. 2014, Eq. 1-3 of Cho's
    Sec. 2.2 without the per-step summary c).

    Returns an EMPTY context (B, T, 0) and weights None, so the decoder concatenates the
    context like any other and needs no branch. Its paper wiring is 'bahdanau' (the decoder
    step is fed only the previous word; the output layer sees [s_t; y_{t-1}], as in Cho 2014).
    """

    paper_wiring: ClassVar[str] = "bahdanau"
    has_weights: ClassVar[bool] = False

    def __init__(self, *, query_size: int, key_size: int, value_size: int | None = None) -> None:
        super().__init__(query_size=query_size, key_size=key_size, value_size=value_size)

    @property
    def context_size(self) -> int:
        return 0

    def prepare(self, keys: Tensor) -> Tensor:
        """(B, S, key_size) -> (B, S, 0): nothing to precompute (a zero-width view)."""
        return keys[..., :0]

    def score(self, query: Tensor, keys_p: Tensor, state: AttentionState) -> Tensor:
        """(B, T, Q), (B, S, 0) -> zeros (B, T, S); unused by forward, kept for the interface."""
        return query.new_zeros(query.size(0), query.size(1), keys_p.size(1))

    def forward(
        self,
        query: Tensor,  # (B, T, query_size)
        keys_p: Tensor,  # (B, S, 0)
        values: Tensor,  # (B, S, value_size)
        mask: Tensor,  # (B, S)
        state: AttentionState | None = None,
    ) -> tuple[Tensor, None]:
        """-> empty context (B, T, 0), None."""
        return values.new_empty(query.size(0), query.size(1), 0), None
