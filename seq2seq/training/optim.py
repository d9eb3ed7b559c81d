"""Optimizers and learning-rate schedules for both model families."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import option_value
from ..errors import ConfigError


def build_optimizer(
    model: nn.Module, *, name: str, lr: float, betas, weight_decay: float
) -> torch.optim.Optimizer:
    if lr <= 0:
        raise ConfigError(f"optim.lr must be positive, got {lr}")
    params = [p for p in model.parameters() if p.requires_grad]
    name = option_value(name)
    # One fused kernel over every parameter instead of ~10 ops per tensor: on a 2-core CPU the
    # Adam step of the 3+3x256 Transformer takes 5 ms instead of 21 ms. Same update, same
    # state_dict layout (checkpoints resume either way).
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") for p in params)
    kwargs = dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, fused=fused or None)
    if name == "adam":
        return torch.optim.Adam(params, **kwargs)
    if name == "adamw":
        return torch.optim.AdamW(params, **kwargs)
    raise ConfigError(f"unknown optimizer {name!r}; valid: adam, adamw")


class Schedule:
    """Learning-rate schedule driven by optimizer steps and by validation BLEU.

    - constant: ``lr`` throughout.
    - noam: linear warm-up to ``lr`` over ``warmup_steps``, then ``lr * sqrt(warmup / step)``
      (Vaswani et al. 2017, Eq. 3, with the peak set directly).
    - plateau: multiply by ``factor`` when validation BLEU has not improved for ``patience``
      validations, down to ``min_lr``.
    - cosine: linear warm-up to ``lr`` over ``warmup_steps``, then
      ``min_lr + (lr - min_lr) * (1 + cos(pi * (step - warmup) / (decay_steps - warmup))) / 2``
      down to ``min_lr`` at ``decay_steps`` and ``min_lr`` after (Loshchilov & Hutter 2017,
      without restarts): the decay sized to the updates a run is expected to need.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        kind: str,
        lr: float,
        warmup_steps: int,
        factor: float,
        patience: int,
        min_lr: float,
        decay_steps: int | None = None,
    ) -> None:
        self.kind = option_value(kind)
        kinds = ("constant", "noam", "plateau", "cosine")
        if self.kind not in kinds:
            raise ConfigError(f"unknown schedule {self.kind!r}; valid: {', '.join(kinds)}")
        if self.kind in ("noam", "cosine") and warmup_steps < 1:
            raise ConfigError(
                f"optim.warmup_steps must be >= 1 for {self.kind}, got {warmup_steps}"
            )
        if self.kind == "cosine" and (decay_steps is None or decay_steps <= warmup_steps):
            raise ConfigError(
                f"optim.decay_steps must be set above optim.warmup_steps={warmup_steps} for "
                f"cosine, got {decay_steps}"
            )
        self.optimizer, self.base_lr, self.warmup = optimizer, lr, warmup_steps
        self.decay_steps = decay_steps
        self.factor, self.patience, self.min_lr = factor, patience, min_lr
        self.scale = 1.0  # plateau reductions so far
        self.best: float | None = None
        self.bad_validations = 0
        self.step(0)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def step(self, step: int) -> None:
        """Set the lr for optimizer step ``step`` (1-based; 0 before training)."""
        if self.kind == "noam":
            step = max(step, 1)
            lr = self.base_lr * min(step / self.warmup, math.sqrt(self.warmup / step))
        elif self.kind == "cosine":
            step = max(step, 1)
            if step <= self.warmup:
                lr = self.base_lr * step / self.warmup
            else:
                done = min(1.0, (step - self.warmup) / (self.decay_steps - self.warmup))
                cosine = (1 + math.cos(math.pi * done)) / 2
                lr = self.min_lr + (self.base_lr - self.min_lr) * cosine
        else:
            lr = max(self.base_lr * self.scale, self.min_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def validated(self, bleu: float) -> None:
        if self.kind != "plateau":
            return
        if self.best is None or bleu > self.best:
            self.best, self.bad_validations = bleu, 0
            return
        self.bad_validations += 1
        if self.bad_validations > self.patience:
            self.scale *= self.factor
            self.bad_validations = 0

    def state_dict(self) -> dict:
        return {"scale": self.scale, "best": self.best, "bad_validations": self.bad_validations}

    def load_state_dict(self, state: dict) -> None:
        self.scale, self.best, self.bad_validations = (
            state["scale"],
            state["best"],
            state["bad_validations"],
        )
