"""Decoding-time precision: the autocast dtype a decoding precision runs under, and the model
prepared for it (an int8 copy for ``precision=int8``). Used by evaluation and translation."""

from __future__ import annotations

import torch

from ..config import option_value
from ..errors import ConfigError
from ..runtime import autocast_dtype, set_tf32


def decoding_autocast(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype a decoding ``precision`` runs under (None for fp32 and int8); raises
    ConfigError for a precision the device cannot decode in, before any work. On CUDA it sets
    training's TF32 rule for that precision (:func:`seq2seq.runtime.set_tf32`)."""
    if option_value(precision) == "int8":
        if device.type != "cpu":
            raise ConfigError(
                f"precision=int8 decodes on the CPU only, not on {device.type}; "
                "use device=cpu, or precision=bf16/fp16 on a GPU"
            )
        return None
    dtype = autocast_dtype(precision, device, key="precision")
    set_tf32(device, dtype)
    return dtype


def decoding_model(model, precision: str):
    """The model to decode with: ``model`` itself for training's precisions (run under
    ``decoding_autocast``'s dtype), an int8 copy of it for ``int8`` (seq2seq.decoding.quantize)."""
    if option_value(precision) == "int8":
        from .quantize import quantize_int8

        return quantize_int8(model)
    return model
