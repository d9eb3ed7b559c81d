"""int8 decoding on CPU: the model's Linear layers dynamically quantized (weights int8 per output
channel, activations int8 per call), through PyTorch's fbgemm / x86 quantized engine.

On a CPU without fast bf16 (AVX2 only) this is the one lower precision with fast kernels: the
int8 matmul runs at about twice the fp32 rate, and the Linear layers (the vocabulary projection
above all) are most of a decoding step. It is for decoding only (``seq2seq-evaluate`` /
``seq2seq-translate`` ``precision=int8``); training stays in float. The attention scores and
softmaxes stay in float32.

PyTorch marks ``torch.ao.quantization`` deprecated in favour of torchao, whose int8 CPU path
needs ``torch.compile``; until that is a drop-in, this uses the eager engine and says so in one
clear error where a build lacks it.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from ..errors import ConfigError
from ..models.base import Seq2Seq


def int8_engine() -> str | None:
    """The quantized engine for int8 Linear layers on this build, or None."""
    engines = torch.backends.quantized.supported_engines
    for engine in ("x86", "fbgemm"):
        if engine in engines:
            return engine
    return None


def quantize_int8(model: Seq2Seq) -> Seq2Seq:
    """A copy of ``model`` (eval mode) whose nn.Linear layers are int8 dynamically quantized."""
    engine = int8_engine()
    if engine is None:
        raise ConfigError(
            "precision=int8 needs PyTorch's x86/fbgemm quantized engine, which this build lacks "
            f"(it has: {', '.join(torch.backends.quantized.supported_engines) or 'none'}); "
            "use precision=fp32"
        )
    # A module that reads its Linear children's ``weight`` directly (a quantized Linear has
    # none) says so with ``reads_linear_weights = True`` (e.g. location attention): kept float.
    kept_float = {
        f"{owner}.{child}".lstrip(".")
        for owner, module in model.named_modules()
        if getattr(module, "reads_linear_weights", False)
        for child, sub in module.named_children()
        if isinstance(sub, nn.Linear)
    }
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*deprecated.*")  # torch.ao's notices
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        torch.backends.quantized.engine = engine
        spec = {
            name: per_channel_dynamic_qconfig
            for name, module in model.named_modules()
            if type(module) is nn.Linear and name not in kept_float
        }
        return quantize_dynamic(copy.deepcopy(model).eval(), qconfig_spec=spec, dtype=torch.qint8)
