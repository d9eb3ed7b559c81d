"""Config -> flat keyword arguments -> model. Config objects stop here (torchtune style)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from .base import Seq2Seq
from .registry import model_class


def _plain(cfg: Any) -> dict:
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    return dict(cfg)


def build_model(
    model_cfg: Any, attention_cfg: Any, *, src_vocab_size: int, tgt_vocab_size: int
) -> Seq2Seq:
    """Build the model of the family registered as ``model_cfg.name``; ValueError naming the
    valid families for an unknown one."""
    model = _plain(model_cfg)
    return model_class(model.pop("name")).build(
        model,
        _plain(attention_cfg or {}),
        src_vocab_size=src_vocab_size,
        tgt_vocab_size=tgt_vocab_size,
    )
