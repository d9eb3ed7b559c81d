"""Training: the recipe (``train``), its setup functions, the loop, loss, optimizers/schedules.

``from seq2seq.training import train`` is resolved lazily, so importing a submodule (the loss,
the optimizer) does not pull in the loop, DDP and the data pipeline.
"""

from __future__ import annotations

from typing import Any

__all__ = ["train"]


def __getattr__(name: str) -> Any:
    if name == "train":
        from .recipe import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
