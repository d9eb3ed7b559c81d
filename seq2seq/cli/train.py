"""seq2seq-train [overrides]: the Hydra entry point. It only calls seq2seq.training.train."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ..config import register_configs
from ..errors import ConfigError
from .common import USER_ERRORS
from .precheck import precheck_train_argv

log = logging.getLogger("seq2seq")
register_configs()
# absolute path: works for editable installs, wheels and `python -m` alike
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "configs")


def main() -> None:
    """Check the command line first (one line per bad input, nothing created), then run Hydra."""
    from ..runtime import keep_freed_memory

    keep_freed_memory()
    try:
        precheck_train_argv(sys.argv[1:], CONFIG_DIR)
    except ConfigError as err:
        if os.environ.get("SEQ2SEQ_DEBUG"):
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    hydra_main()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    from ..training import train

    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    run_dir = Path(cfg.run_dir)
    try:
        metrics = train(cfg)
        return metrics.get("val_bleu")
    except (*USER_ERRORS, RuntimeError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if isinstance(err, RuntimeError) and "out of memory" in message.lower():
            message = f"out of memory: lower data.max_tokens (now {cfg.data.max_tokens}) [{message[:120]}]"
        failure = {
            "status": "failed",
            "error": message,
            "model": cfg.model.name,
            "attention": cfg.attention.name,
        }
        write_failure(run_dir / "metrics.json", failure)
        if os.environ.get("SEQ2SEQ_DEBUG") or (
            isinstance(err, RuntimeError) and "out of memory" not in message
        ):
            raise
        if multirun:  # a failed job must not kill the sweep; seq2seq-compare lists it as failed
            log.error("error: %s", message)
            return None
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)


def write_failure(path: Path, failure: dict) -> None:
    """Record a failed start for seq2seq-compare, never over a finished run's metrics
    (a mistyped resume must not destroy them) and never raising (the error line comes next)."""
    try:
        if path.is_file() and json.loads(path.read_text(encoding="utf-8")).get("status") in (
            "finished",
            "diverged",
        ):
            return
    except (OSError, ValueError, AttributeError):
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(failure, indent=2) + "\n", encoding="utf-8")
    except OSError:
        pass


if __name__ == "__main__":
    main()
