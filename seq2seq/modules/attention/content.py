"""Content-based attention of Graves (2014) (Neural Turing Machines / handwriting addressing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Attention, AttentionConfig, AttentionState
from .registry import register_attention


@dataclass
class ContentAttentionConfig(AttentionConfig):
    name: str = "content"
    init_sharpness: float = 5.0


@register_attention("content", schema=ContentAttentionConfig)
class ContentAttention(Attention):
    """e_ts = beta * cos(W_q s_t, h_s) = beta * k_t . h_s / (|k_t| |h_s|)   (the content-based
    addressing of Graves 2014, Sec. 3.3, Eq. 2 of Graves et al. 2014 (NTM), with K = cosine
    similarity). k_t = W_q s_t is the key emitted by the decoder (W_q: key_size x query_size);
    beta is one learned sharpness scalar initialised to ``init_sharpness``. Weights: masked
    softmax over real positions.

    ``prepare`` L2-normalises the keys once per sentence, so a step costs one matmul.
    Paper wiring: 'bahdanau' (the key comes from the previous decoder state).
    """

    paper_wiring: ClassVar[str] = "bahdanau"

    def __init__(self, *, query_size: int, key_size: int, init_sharpness: float = 5.0) -> None:
        super().__init__(query_size=query_size, key_size=key_size)
        if init_sharpness <= 0:
            raise ValueError(f"attention.init_sharpness must be > 0, got {init_sharpness}")
        self.query_proj = nn.Linear(query_size, key_size)  # W_q
        self.sharpness = nn.Parameter(torch.tensor(float(init_sharpness)))  # beta

    def prepare(self, keys: Tensor) -> Tensor:
        """(B, S, key_size) -> unit-norm keys (B, S, key_size)."""
        return F.normalize(keys, dim=-1, eps=1e-6)

    def score(self, query: Tensor, keys_p: Tensor, state: AttentionState) -> Tensor:
        """(B, T, query_size), (B, S, key_size) -> (B, T, S)."""
        k = F.normalize(self.query_proj(query), dim=-1, eps=1e-6)  # (B, T, key_size)
        return (k @ keys_p.transpose(1, 2)) * self.sharpness  # (B, T, S)
