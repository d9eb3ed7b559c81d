"""The one place attention variants are recorded: name -> class, each class with its schema and
its named presets (fairseq's ``register_model`` is the model).

    @register_attention("additive", schema=AdditiveAttentionConfig)
    class AdditiveAttention(Attention): ...

Everything else reads this registry: seq2seq.config registers each schema in Hydra's
ConfigStore as ``schema/attention/<name>`` and each preset as ``variant/<preset>``;
seq2seq.validation calls the class's ``check_options``; seq2seq.compare its ``label``;
seq2seq.decoding.quantize its ``reads_linear_weights``; the RNN model its ``paper_wiring`` and
``compares_query_and_keys`` (which seq2seq.validation reads too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .base import Attention, AttentionConfig, check_choice, enum_value

__all__ = [
    "ATTENTIONS",
    "attention_class",
    "attention_schemas",
    "build_attention",
    "preset_model_options",
    "preset_options",
    "presets",
    "register_attention",
    "unregister_attention",
]

ATTENTIONS: dict[str, type[Attention]] = {}  # in registration order
MODEL_PREFIX = "model."  # preset keys that are options of the model, not of the attention

A = TypeVar("A", bound=type[Attention])


def register_attention(
    name: str,
    *,
    schema: type[AttentionConfig],
    presets: Mapping[str, Mapping[str, Any]] | None = None,
) -> Callable[[A], A]:
    """Class decorator: record an :class:`Attention` subclass as variant ``name``.

    schema:  its config dataclass, a subclass of AttentionConfig whose ``name`` defaults to
             ``name``; its other fields are the constructor's keyword options.
    presets: named choices for sweeps, preset name -> options (a subset of the schema's
             fields), each becoming ``variant=<preset>`` (an RNN with this attention). Names are
             unique across variants. Default: one preset named ``name`` with the defaults.
             A key ``model.<key>`` is an option of the RNN model the preset needs (e.g.
             ``"model.split_directions": True`` for a score with no parameter between decoder
             and encoder states); composing the preset checks it against the model schema.

    Sets ``cls.name``, ``cls.schema`` and ``cls.presets``. ValueError for a taken name or preset,
    or a schema that does not fit.
    """

    def decorator(cls: A) -> A:
        if not (isinstance(cls, type) and issubclass(cls, Attention)):
            raise TypeError(f"@register_attention({name!r}) decorates Attention subclasses")
        taken = ATTENTIONS.get(name)
        if taken is not None and taken.__qualname__ != cls.__qualname__:
            raise ValueError(f"attention {name!r} is already registered ({taken.__qualname__})")
        if not (dataclasses.is_dataclass(schema) and issubclass(schema, AttentionConfig)):
            raise TypeError(f"schema of attention {name!r} must be an AttentionConfig dataclass")
        fields = {f.name: f for f in dataclasses.fields(schema)}
        if fields["name"].default != name:
            raise ValueError(
                f"{schema.__name__}.name defaults to {fields['name'].default!r}, not {name!r}"
            )
        chosen = {name: {}} if presets is None else {k: dict(v) for k, v in presets.items()}
        for preset, options in chosen.items():
            own = {key for key in options if not key.startswith(MODEL_PREFIX)}
            unknown = sorted(own - set(fields) | ({"name"} & own))
            if unknown:
                raise ValueError(
                    f"preset {preset!r} of attention {name!r}: unknown option(s) "
                    f"{', '.join(unknown)}; valid: {', '.join(sorted(set(fields) - {'name'}))}"
                )
            owner = next(
                (other for other, c in ATTENTIONS.items() if other != name and preset in c.presets),
                None,
            )
            if owner is not None:
                raise ValueError(f"preset {preset!r} of attention {name!r} is {owner!r}'s already")
        cls.name, cls.schema, cls.presets = name, schema, chosen
        ATTENTIONS[name] = cls
        return cls

    return decorator


def unregister_attention(name: str) -> None:
    """Forget variant ``name`` (tests that register a toy variant clean up with this)."""
    ATTENTIONS.pop(name, None)


def attention_class(name: str) -> type[Attention]:
    """The class registered as ``name``; ValueError listing the valid names otherwise."""
    return ATTENTIONS[check_choice("attention", name, sorted(ATTENTIONS))]


def attention_schemas() -> dict[str, type[AttentionConfig]]:
    """name -> schema dataclass of every registered variant."""
    return {name: cls.schema for name, cls in ATTENTIONS.items()}


def preset_options() -> dict[str, dict[str, Any]]:
    """preset name -> the attention options it sets, ``name`` first (e.g. ``"local_m":
    {"name": "local", "mode": "monotonic"}``), for every registered variant; the model
    options a preset needs are :func:`preset_model_options`."""
    return {
        preset: {"name": name}
        | {k: v for k, v in options.items() if not k.startswith(MODEL_PREFIX)}
        for name, cls in ATTENTIONS.items()
        for preset, options in cls.presets.items()
    }


def preset_model_options() -> dict[str, dict[str, Any]]:
    """preset name -> the model options it needs (``"dot": {"split_directions": True}``),
    ``{}`` for most, for every registered variant."""
    return {
        preset: {
            k.removeprefix(MODEL_PREFIX): v
            for k, v in options.items()
            if k.startswith(MODEL_PREFIX)
        }
        for cls in ATTENTIONS.values()
        for preset, options in cls.presets.items()
    }


def _override_value(value: Any) -> str:
    value = enum_value(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def presets() -> dict[str, list[str]]:
    """preset name -> the Hydra overrides it stands for, e.g. ``"local_m": ["attention=local",
    "attention.mode=monotonic"]``, then the model options it needs (``model.split_directions=
    true``); add ``model=rnn``."""
    model_options = preset_model_options()
    return {
        preset: [f"attention={options.pop('name')}"]
        + [f"attention.{key}={_override_value(v)}" for key, v in options.items()]
        + [f"model.{key}={_override_value(v)}" for key, v in model_options[preset].items()]
        for preset, options in preset_options().items()
    }


def build_attention(*, name: str, query_size: int, key_size: int, **options) -> Attention:
    """Build variant ``name`` with keyword-only ``options`` (its config fields, minus name,
    wiring and input_feeding)."""
    return attention_class(name)(query_size=query_size, key_size=key_size, **options)
