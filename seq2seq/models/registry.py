"""The one place model families are recorded: name -> class, each class with its schema (the
model group's counterpart of :mod:`seq2seq.modules.attention.registry`).

    @register_model("rnn", schema=RNNModelConfig)
    class RNNSeq2Seq(Seq2Seq): ...

Everything else reads this registry and names no family: seq2seq.config registers each schema
in Hydra's ConfigStore as the option ``model=<name>`` and asks ``own_attention`` for run labels;
seq2seq.validation calls the class's ``check_options``; seq2seq.models.builders its ``build``;
the end of training and seq2seq-compare its ``own_attention`` and ``label`` (see
:class:`seq2seq.models.base.Seq2Seq`).

Importing this module loads no model (it imports nothing of the package): the families, every
module of ``seq2seq/models/``, are imported at the first lookup. So the neutral modules and
seq2seq-compare, which must not depend on model code, read the registry without loading it at
import time; only asking about a family does.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .base import Seq2Seq

__all__ = [
    "model_class",
    "model_family",
    "model_schemas",
    "register_model",
    "unregister_model",
]

_MODELS: dict[str, type[Seq2Seq]] = {}  # in registration order
_families_loaded = False

M = TypeVar("M", bound=type)


def register_model(name: str, *, schema: type) -> Callable[[M], M]:
    """Class decorator: record a :class:`~seq2seq.models.base.Seq2Seq` subclass as model
    family ``name``.

    schema: its config dataclass, whose ``name`` field defaults to ``name``; its other fields
            are the family's options (``model.<option>=...``).

    Sets ``cls.name`` and ``cls.schema``. ValueError for a taken name or a schema whose
    ``name`` defaults to another; TypeError for a schema that is not a dataclass.
    """

    def decorator(cls: M) -> M:
        taken = _MODELS.get(name)
        if taken is not None and taken.__qualname__ != cls.__qualname__:
            raise ValueError(f"model family {name!r} is already registered ({taken.__qualname__})")
        if not dataclasses.is_dataclass(schema):
            raise TypeError(f"schema of model family {name!r} must be a dataclass")
        default = {f.name: f.default for f in dataclasses.fields(schema)}.get("name")
        if default != name:
            raise ValueError(f"{schema.__name__}.name defaults to {default!r}, not {name!r}")
        cls.name, cls.schema = name, schema
        _MODELS[name] = cls
        return cls

    return decorator


def unregister_model(name: str) -> None:
    """Forget family ``name`` (tests that register a toy family clean up with this)."""
    _MODELS.pop(name, None)


def _load_families() -> None:
    """Import every module of this package once: each family file registers its class."""
    global _families_loaded
    if _families_loaded:
        return
    _families_loaded = True
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{__package__}.{module.name}")


def model_family(name: str) -> type[Seq2Seq] | None:
    """The class registered as ``name``, None for a name no family has."""
    _load_families()
    return _MODELS.get(name)


def model_class(name: str) -> type[Seq2Seq]:
    """The class registered as ``name``; ValueError listing the valid names otherwise."""
    family = model_family(name)
    if family is None:
        raise ValueError(f"unknown model family {name!r}; valid: {', '.join(sorted(_MODELS))}")
    return family


def model_schemas() -> dict[str, type]:
    """name -> schema dataclass of every registered family."""
    _load_families()
    return {name: cls.schema for name, cls in _MODELS.items()}
