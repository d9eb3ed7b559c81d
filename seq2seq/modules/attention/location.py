"""Location-based attention of Luong et al. (2015): alignment from the target state alone."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Attention, AttentionConfig, AttentionState, at_least, masked_softmax
from .registry import register_attention

log = logging.getLogger(__name__)
_WARNED = False  # the warning about sources longer than max_src_len: once per process
_WARN_LOCK = threading.Lock()  # decoding streams may run in threads


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
    The keys are ignored. The model can address only the first max_src_len positions: in a
    longer source, the later positions get exactly zero weight (and the sentence is still
    translated); ``observe_source`` logs one warning per process with the count.
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

    def observe_source(self, mask: Tensor) -> None:
        """Warn once per process when a batch holds sources longer than max_src_len."""
        global _WARNED
        if _WARNED or mask.size(1) <= self.max_src_len:  # the shape alone: no device sync
            return
        longer = int((mask.sum(-1) > self.max_src_len).sum())
        with _WARN_LOCK:
            if _WARNED or not longer:
                return
            _WARNED = True
        log.warning(
            "location attention addresses only the first %d source positions: %d %s in a "
            "batch of %d %s longer; their later positions get no attention weight (raise "
            "attention.max_src_len to address them; said once per process)",
            self.max_src_len,
            longer,
            "sentence" if longer == 1 else "sentences",
            mask.size(0),
            "is" if longer == 1 else "are",
        )

    def score(self, query: Tensor, keys_p: Tensor, state: AttentionState) -> Tensor:
        """(B, T, query_size), (B, S, 0) -> (B, T, S); positions from max_src_len on get 0
        (``normalize`` gives them no weight)."""
        src_len = keys_p.size(1)
        used = min(src_len, self.max_src_len)
        scores = F.linear(query, self.proj.weight[:used], self.proj.bias[:used])  # (B, T, used)
        return F.pad(scores, (0, src_len - used)) if used < src_len else scores

    def normalize(self, scores: Tensor, mask: Tensor, state: AttentionState) -> Tensor:
        """Masked softmax over the real positions below max_src_len; exactly 0 elsewhere."""
        if scores.size(-1) > self.max_src_len:
            positions = torch.arange(scores.size(-1), device=scores.device)
            mask = mask & (positions < self.max_src_len)
        return masked_softmax(scores, mask)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, max_src_len={self.max_src_len}"
