"""Config -> flat keyword arguments -> model. Config objects stop here (torchtune style)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from .base import Seq2Seq


def _plain(cfg: Any) -> dict:
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    return dict(cfg)


def build_model(
    model_cfg: Any, attention_cfg: Any, *, src_vocab_size: int, tgt_vocab_size: int
) -> Seq2Seq:
    """Build the model named by ``model_cfg.name`` ('rnn' or 'transformer')."""
    model = _plain(model_cfg)
    name = model.pop("name")
    if name == "rnn":
        from .rnn import build_rnn

        return build_rnn(
            model,
            _plain(attention_cfg),
            src_vocab_size=src_vocab_size,
            tgt_vocab_size=tgt_vocab_size,
        )
    if name == "transformer":
        from .transformer import build_transformer

        return build_transformer(
            model, src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size
        )
    raise ValueError(f"unknown model family {name!r}; valid: rnn, transformer")
