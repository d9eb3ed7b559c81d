"""Where training reports scalars and figures. The loop talks to a :class:`TrainLogger`;
:func:`make_logger` picks the implementation from ``logger.name`` (:data:`LOGGERS`):
TensorBoard under ``run_dir/tb`` (the default), Weights & Biases, MLflow, or off. DDP ranks
other than 0 log nothing."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError
from ..run_files import MLRUNS, TENSORBOARD
from .rundir import flatten


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


def rendered(figure: Any) -> Any:
    """A matplotlib Figure drawn by Agg: (height, width, 3) uint8 pixels."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _require(module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"logger={extra} needs the {module} package: pip install 'seq2seq[{extra}]' "
            "(or choose logger=tensorboard)"
        )


@dataclass(frozen=True)
class TrackedRun:
    """What a tracking service (W&B, MLflow) records a run under: its files' home
    ``run_dir``, the ``project``, the run's ``name``, its ``tags`` and its ``config``."""

    run_dir: Path
    project: str
    name: str
    tags: dict[str, str]
    config: dict


class WandbLogger:
    """A Weights & Biases run (offline by default: files under ``run_dir/wandb``)."""

    enabled = True

    def __init__(self, run: TrackedRun, *, mode: str, entity: str | None) -> None:
        _require("wandb", "wandb")
        import wandb

        self.wandb = wandb
        self.run = wandb.init(
            project=run.project,
            entity=entity,
            name=run.name,
            mode=mode,
            dir=str(run.run_dir),
            config=run.config,
            tags=[f"{k}:{v}" for k, v in run.tags.items()] or None,
            reinit="create_new",
        )

    def scalars(self, values: dict[str, float], step: int) -> None:
        self.run.log(dict(values), step=step)

    def figure(self, tag: str, figure: Any, step: int) -> None:
        # pixels, not the Figure: wandb recognises a Figure through matplotlib.pyplot, which
        # this package never imports (a plain Figure raised AttributeError there)
        self.run.log({tag: self.wandb.Image(rendered(figure))}, step=step)

    def flush(self) -> None:
        pass  # wandb writes in the background

    def close(self) -> None:
        self.run.finish()


class MLflowLogger:
    """An MLflow run; without ``tracking_uri`` a file store in ``run_dir/mlruns``."""

    enabled = True

    def __init__(self, run: TrackedRun, *, tracking_uri: str | None) -> None:
        _require("mlflow", "mlflow")
        import mlflow

        if tracking_uri is None:
            tracking_uri = (run.run_dir.resolve() / MLRUNS).as_uri()
            # MLflow 3 keeps its file store only on request; a run directory is the place for it
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = mlflow.tracking.MlflowClient(tracking_uri)
        experiment = self.client.get_experiment_by_name(run.project)
        experiment_id = (
            experiment.experiment_id if experiment else self.client.create_experiment(run.project)
        )
        self.run_id = self.client.create_run(
            experiment_id, run_name=run.name, tags=dict(run.tags)
        ).info.run_id
        for key, value in flatten(run.config).items():
            self.client.log_param(self.run_id, key, str(value)[:500])  # MLflow's length limit

    def scalars(self, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.client.log_metric(self.run_id, key, float(value), step=step)

    def figure(self, tag: str, figure: Any, step: int) -> None:
        self.client.log_figure(self.run_id, figure, f"{tag}/step_{step}.png")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


LOGGERS = ("tensorboard", "wandb", "mlflow", "off")


def make_logger(logger_cfg: Any, run_dir: Path, *, is_main: bool, config: dict) -> TrainLogger:
    """The logger ``logger_cfg.name`` names, for the main process; NullLogger elsewhere."""
    name = str(getattr(logger_cfg.name, "value", logger_cfg.name))
    if not is_main or name == "off":
        return NullLogger()
    if name == "tensorboard":
        return TensorBoardLogger(Path(run_dir) / TENSORBOARD)
    run = TrackedRun(
        Path(run_dir),
        project=logger_cfg.project,
        name=logger_cfg.run_name or Path(run_dir).name,
        tags=dict(logger_cfg.tags or {}),
        config=config,
    )
    if name == "wandb":
        return WandbLogger(run, mode=logger_cfg.mode, entity=logger_cfg.entity)
    if name == "mlflow":
        return MLflowLogger(run, tracking_uri=logger_cfg.tracking_uri)
    raise ConfigError(f"logger={name} is not a logger; valid: {', '.join(LOGGERS)}")
