"""Attention variants behind one interface, chosen by name: ``build_attention(name=..., ...)``.

A new variant is one class (a subclass of :class:`Attention`, usually writing only ``score``)
added to ``ATTENTIONS`` below, plus one YAML file in configs/attention/ (and its schema in
seq2seq/config.py). The decoder never names a variant.
"""

from __future__ import annotations

from .additive import AdditiveAttention
from .base import Attention, AttentionState, masked_softmax
from .content import ContentAttention
from .local import LocalAttention
from .location import LocationAttention
from .multiplicative import SCORES, MultiplicativeAttention
from .none import NoAttention

ATTENTIONS: dict[str, type[Attention]] = {
    "none": NoAttention,
    "additive": AdditiveAttention,
    "multiplicative": MultiplicativeAttention,
    "local": LocalAttention,
    "content": ContentAttention,
    "location": LocationAttention,
}


def attention_class(name: str) -> type[Attention]:
    """The class registered as ``name``; ValueError listing the valid names otherwise."""
    try:
        return ATTENTIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown attention {name!r}; valid: {', '.join(sorted(ATTENTIONS))}"
        ) from None


def build_attention(*, name: str, query_size: int, key_size: int, **options) -> Attention:
    """Build variant ``name`` with keyword-only ``options`` (its config fields, minus name,
    wiring and input_feeding)."""
    return attention_class(name)(query_size=query_size, key_size=key_size, **options)


__all__ = [
    "ATTENTIONS",
    "SCORES",
    "AdditiveAttention",
    "Attention",
    "AttentionState",
    "ContentAttention",
    "LocalAttention",
    "LocationAttention",
    "MultiplicativeAttention",
    "NoAttention",
    "attention_class",
    "build_attention",
    "masked_softmax",
]
