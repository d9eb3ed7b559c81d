"""Where training reports scalars and figures. The loop talks to a :class:`TrainLogger`; the
recipe picks the implementation (TensorBoard under ``run_dir/tb`` on the main process, nothing
on the other DDP ranks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class TrainLogger(Protocol):
    def scalars(self, values: dict[str, float], step: int) -> None: ...

    def figure(self, tag: str, figure: Any, step: int) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...

    @property
    def enabled(self) -> bool: ...


class NullLogger:
    """Logs nothing (DDP ranks other than 0)."""

    enabled = False

    def scalars(self, values: dict[str, float], step: int) -> None:
        pass

    def figure(self, tag: str, figure: Any, step: int) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardLogger:
    """TensorBoard event files in ``log_dir`` (``train/loss``, ``valid/bleu``, ...)."""

    enabled = True

    def __init__(self, log_dir: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def figure(self, tag: str, figure: Any, step: int) -> None:
        self.writer.add_figure(tag, figure, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
