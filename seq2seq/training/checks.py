"""The checks a training config passes before any work (:func:`check_config`), run once per
training run: by seq2seq-train's pre-check, before Hydra creates anything, when it could check
the command line; otherwise by :func:`seq2seq.training.recipe.train` itself (a sweep's job, the
Python API, a direct caller)."""

from __future__ import annotations

from typing import Any

from ..evaluation.bleu import check_tokenize, run_tokenize
from ..validation import check_train_config


def check_config(cfg: Any) -> None:
    """ConfigError (one line) for a composed training config that cannot train: ranges and
    relations (:func:`seq2seq.validation.check_train_config`), then the BLEU tokenizer, so a
    missing extra fails now, not at the first validation."""
    check_train_config(cfg)
    check_tokenize(run_tokenize(cfg))
