"""Training: the loop, loss, optimizers/schedules, checkpoints."""

from .loop import train

__all__ = ["train"]
