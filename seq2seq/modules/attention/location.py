"""Location-based attention of Luong et al. (2015): alignment from the target state alone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from .base import Attention, AttentionConfig, AttentionState, at_least
from .registry import register_attention


@dataclass
class LocationAttentionConfig(AttentionConfig):
    name: str = "location"
    max_src_len: int = 256  # W_a maps the state to this many positions


@register_attention("location", schema=LocationAttentionConfig)
class LocationAttention(Attention):
    """a_t = softmax(W_a h_t)   (Eq. 8 'location' in Luong et al. 2015).

    W_a: (max_src_len, query_size) with bias maps the decoder state to one energy per source
    position; only the first S rows are used for a source of length S, and the softmax runs over
    the sentence's real positions (masked, so the weights are renormalised to sum to 1).
    The keys are ignored. A source longer than max_src_len raises ValueError.
    Paper wiring: 'luong'. The score reads ``proj.weight`` rows directly, so int8 decoding
    keeps ``proj`` float (``reads_linear_weights``).
    """

    paper_wiring: ClassVar[str] = "luong"
    reads_linear_weights: ClassVar[bool] = True

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> list[str]:
        return at_least(options, "max_src_len", 1)

    def __init__(self, *, query_size: int, key_size: int, max_src_len: int = 256) -> None:
        super().__init__(query_size=query_size, key_size=key_size)
        if max_src_len < 1:
            raise ValueError(f"attention.max_src_len must be >= 1, got {max_src_len}")
        self.max_src_len = max_src_len
        self.proj = nn.Linear(query_size, max_src_len)  # W_a

    def prepare(self, keys: Tensor) -> Tensor:
        """(B, S, key_size) -> (B, S, 0): the score never reads the keys, only their length."""
        return keys[..., :0]

    def score(self, query: Tensor, keys_p: Tensor, state: AttentionState) -> Tensor:
        """(B, T, query_size), (B, S, 0) -> (B, T, S)."""
        src_len = keys_p.size(1)
        if src_len > self.max_src_len:
            raise ValueError(
                f"source length {src_len} exceeds attention.max_src_len={self.max_src_len}; "
                f"raise attention.max_src_len or lower data.max_len"
            )
        return F.linear(query, self.proj.weight[:src_len], self.proj.bias[:src_len])  # (B, T, S)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, max_src_len={self.max_src_len}"
