"""Attention variants behind one interface, chosen by name: ``build_attention(name=..., ...)``.

Adding a variant takes exactly one new file and no edit anywhere else:
``seq2seq/modules/attention/<file>.py``, a schema dataclass (a subclass of
:class:`AttentionConfig` with ``name`` defaulting to the variant's name and one field per
constructor option) and the class (a subclass of :class:`Attention`, usually writing only
``score``), decorated with ``@register_attention("<name>", schema=<Schema>)``. Optional, on the
class: ``paper_wiring``, ``has_weights``, ``reads_linear_weights``, ``check_options`` (range
checks), ``label`` (comparison tables), ``compares_query_and_keys`` (a score with no parameter
between query and keys), ``step_state``, ``observe_source``; and ``presets={...}`` on the
decorator (default: one preset named after the variant; a preset may carry the
``model.<key>`` options it needs). Scores and weights run in float32 under any autocast, in
the base class, for every variant.

This package imports every module in its folder (below), so the new file registers itself;
seq2seq.config then registers the schema in Hydra's ConfigStore as the option
``attention=<name>`` (``attention.<option>=...``; no YAML file) and each preset as ``variant=<preset>`` (swept by
``experiment=compare_attention``). Validation, seq2seq-compare's labels, int8 quantization and
the RNN decoder read the class, never its name. tests/test_configs.py
(``test_a_new_variant_needs_only_a_class_file``) proves this on a toy variant.
This package imports nothing of models/, training/, data/, evaluation/ or cli/.

Registry API (seq2seq.modules.attention.registry): ``ATTENTIONS`` (name -> class),
``register_attention``, ``unregister_attention``, ``attention_class``, ``attention_schemas``,
``presets`` (preset -> Hydra overrides), ``preset_options`` (preset -> options),
``preset_model_options`` (preset -> the model options it needs), ``build_attention``.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import Attention, AttentionConfig, AttentionState, Wiring, masked_softmax
from .registry import (
    ATTENTIONS,
    attention_class,
    attention_schemas,
    build_attention,
    preset_model_options,
    preset_options,
    presets,
    register_attention,
    unregister_attention,
)

# Every module of this folder: each variant file registers its class when imported.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
del _module

# Re-exported for convenience (a new variant needs no line here).
from .additive import AdditiveAttention, AdditiveAttentionConfig  # noqa: E402
from .content import ContentAttention, ContentAttentionConfig, Sharpness  # noqa: E402
from .hard import Estimator, HardAttention, HardAttentionConfig, HardDecode  # noqa: E402
from .local import LocalAttention, LocalAttentionConfig, LocalMode  # noqa: E402
from .location import LocationAttention, LocationAttentionConfig  # noqa: E402
from .multiplicative import (  # noqa: E402
    SCORES,
    MultiplicativeAttention,
    MultiplicativeAttentionConfig,
    Scale,
    Score,
)
from .none import NoAttention, NoAttentionConfig  # noqa: E402

__all__ = [
    "ATTENTIONS",
    "SCORES",
    "AdditiveAttention",
    "AdditiveAttentionConfig",
    "Attention",
    "AttentionConfig",
    "AttentionState",
    "ContentAttention",
    "ContentAttentionConfig",
    "Estimator",
    "HardAttention",
    "HardAttentionConfig",
    "HardDecode",
    "LocalAttention",
    "LocalAttentionConfig",
    "LocalMode",
    "LocationAttention",
    "LocationAttentionConfig",
    "MultiplicativeAttention",
    "MultiplicativeAttentionConfig",
    "NoAttention",
    "NoAttentionConfig",
    "Scale",
    "Score",
    "Sharpness",
    "Wiring",
    "attention_class",
    "attention_schemas",
    "build_attention",
    "masked_softmax",
    "preset_model_options",
    "preset_options",
    "presets",
    "register_attention",
    "unregister_attention",
]
