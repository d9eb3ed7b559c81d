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
from .common import USER_ERRORS

log = logging.getLogger("seq2seq")
register_configs()
# absolute path: works for editable installs, wheels and `python -m` alike
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "configs")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
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
        run_dir.mkdir(parents=True, exist_ok=True)
        failure = {
            "status": "failed",
            "error": message,
            "model": cfg.model.name,
            "attention": cfg.attention.name,
        }
        (run_dir / "metrics.json").write_text(
            json.dumps(failure, indent=2) + "\n", encoding="utf-8"
        )
        if os.environ.get("SEQ2SEQ_DEBUG") or (
            isinstance(err, RuntimeError) and "out of memory" not in message
        ):
            raise
        log.error("error: %s", message)
        if multirun:  # a failed job must not kill the sweep; seq2seq-compare lists it as failed
            return None
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
