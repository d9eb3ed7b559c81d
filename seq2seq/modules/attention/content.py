"""Content-based attention of Graves (2014) (Neural Turing Machines / handwriting addressing)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Attention, AttentionConfig, AttentionState, check_choice
from .registry import register_attention

# per_step: beta_t = softplus(w^T s_t + b), emitted at every step (Graves 2014);
# global: one learned scalar beta for every step and sentence. (OmegaConf converts a string
# to an enum member by name, and "global" is a keyword: hence the functional form.)
Sharpness = Enum(
    "Sharpness", {"per_step": "per_step", "global": "global"}, type=str, module=__name__
)


SHARPNESS = tuple(mode.value for mode in Sharpness)  # ("per_step", "global")


@dataclass
class ContentAttentionConfig(AttentionConfig):
    name: str = "content"
    sharpness: Sharpness = Sharpness["per_step"]
    init_sharpness: float = 5.0  # beta at initialisation (per_step: softplus(b), w^T s_t near 0)


def _inverse_softplus(y: float) -> float:
    """x with softplus(x) = y > 0 (log(exp(y) - 1), stable for large y)."""
    return y + math.log(-math.expm1(-y))


@register_attention("content", schema=ContentAttentionConfig)
class ContentAttention(Attention):
    """e_ts = beta_t * cos(W_q s_t, h_s) = beta_t * k_t . h_s / (|k_t| |h_s|)   (the
    content-based addressing of Graves 2014, Sec. 3.3 / Eq. 5-6 of the NTM paper, Graves et al.
    2014, with K = cosine similarity). k_t = W_q s_t is the key the decoder (the controller)
    emits, W_q: key_size x query_size.

    beta_t >= 0 is the key strength:
      sharpness=per_step (default, as in the papers): beta_t = softplus(w^T s_t + b), one value
        per decoder step from the same state, ``key_strength`` = Linear(query_size, 1); b is
        initialised to softplus^-1(init_sharpness) and w as nn.Linear does (small), so beta_t
        starts near ``init_sharpness`` and varies from step to step.
      sharpness=global: one learned scalar ``sharpness`` initialised to ``init_sharpness``
        (unconstrained, as before this option existed).
    Weights: masked softmax over real positions.

    ``prepare`` L2-normalises the keys once per sentence, so a step costs one matmul.
    Paper wiring: 'bahdanau' (the key comes from the previous decoder state).
    """

    paper_wiring: ClassVar[str] = "bahdanau"

    @classmethod
    def check_options(cls, options) -> list[str]:
        value = options.get("init_sharpness")
        if value is not None and not (math.isfinite(value) and value > 0):
            return [f"attention.init_sharpness must be a finite number > 0, got {value}"]
        return []

    def __init__(
        self,
        *,
        query_size: int,
        key_size: int,
        sharpness: str = "per_step",
        init_sharpness: float = 5.0,
    ) -> None:
        super().__init__(query_size=query_size, key_size=key_size)
        sharpness = check_choice("attention.sharpness", sharpness, SHARPNESS)
        if init_sharpness <= 0:
            raise ValueError(f"attention.init_sharpness must be > 0, got {init_sharpness}")
        self.sharpness_mode = sharpness
        self.query_proj = nn.Linear(query_size, key_size)  # W_q
        if sharpness == "per_step":
            self.key_strength = nn.Linear(query_size, 1)  # w, b
            with torch.no_grad():
                self.key_strength.bias.fill_(_inverse_softplus(float(init_sharpness)))
        else:
            self.sharpness = nn.Parameter(torch.tensor(float(init_sharpness)))  # beta

    def beta(self, query: Tensor) -> Tensor:
        """(B, T, query_size) -> the key strength (B, T, 1) (per_step) or a 0-dim tensor."""
        if self.sharpness_mode == "per_step":
            return F.softplus(self.key_strength(query))  # Graves 2014, Eq. 5-6
        return self.sharpness

    def prepare(self, keys: Tensor) -> Tensor:
        """(B, S, key_size) -> unit-norm keys (B, S, key_size)."""
        return F.normalize(keys, dim=-1, eps=1e-6)

    def score(self, query: Tensor, keys_p: Tensor, state: AttentionState) -> Tensor:
        """(B, T, query_size), (B, S, key_size) -> (B, T, S)."""
        k = F.normalize(self.query_proj(query), dim=-1, eps=1e-6)  # (B, T, key_size)
        return (k @ keys_p.transpose(1, 2)) * self.beta(query)  # (B, T, S)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, sharpness={self.sharpness_mode}"
