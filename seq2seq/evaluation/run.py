"""Load a finished (or interrupted) training run: its config, vocabulary and model."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from ..checkpoint import load_checkpoint
from ..data.vocab import Tokenizer
from ..errors import CheckpointError
from ..models.base import Seq2Seq
from ..models.builders import build_model
from ..run_files import BEST, CHECKPOINTS, LAST

log = logging.getLogger("seq2seq.evaluate")


@dataclass
class LoadedRun:
    run_dir: Path
    checkpoint: Path
    config: DictConfig  # the training run's resolved config
    tokenizer: Tokenizer
    model: Seq2Seq  # in eval mode, on the requested device
    step: int


def load_run(
    run_dir: str | Path, *, checkpoint: str = "best", device: torch.device | str = "cpu"
) -> LoadedRun:
    """Load ``run_dir/checkpoints/<checkpoint>.pt`` (``best`` falls back to ``last``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(
            f"run directory {run_dir} does not exist; pass run_dir=DIR of a training run"
        )
    ckpt_dir = run_dir / CHECKPOINTS
    path = ckpt_dir / f"{checkpoint}.pt"
    if checkpoint == "best" and not path.is_file() and (run_dir / LAST).is_file():
        path = run_dir / LAST
        log.warning("%s is missing: using %s instead", run_dir / BEST, path)
    if not path.is_file() and checkpoint not in ("best", "last"):
        saved = sorted(p.stem for p in ckpt_dir.glob("*.pt")) if ckpt_dir.is_dir() else []
        has = ", ".join(saved) if saved else "none (train it first)"
        raise CheckpointError(
            f"unknown checkpoint {checkpoint!r}: the run has {has} (in {ckpt_dir})"
        )
    if not path.is_file():
        raise CheckpointError(f"no checkpoint {path}: the run has not saved one (train it first)")
    payload = load_checkpoint(path, map_location="cpu")
    try:
        config = OmegaConf.create(payload["config"])
        spm = payload["spm"]
        sizes = payload["vocab_sizes"]
    except KeyError as err:
        raise CheckpointError(
            f"checkpoint {path} lacks {err.args[0]!r}: not written by seq2seq-train"
        ) from None
    models = [run_dir / spm["src"], run_dir / spm["tgt"]]
    for model_file in models:
        if not model_file.is_file():
            raise CheckpointError(
                f"sentencepiece model {model_file} is missing from the run directory"
            )
    try:
        tokenizer = Tokenizer(*models)
    except (RuntimeError, OSError) as err:
        raise CheckpointError(
            f"sentencepiece model in {run_dir / 'vocab'} cannot be loaded ({str(err)[:120]}): "
            "the run directory is damaged; copy its vocab/ back or retrain"
        ) from None
    if (tokenizer.src_vocab_size, tokenizer.tgt_vocab_size) != (sizes["src"], sizes["tgt"]):
        raise CheckpointError(
            f"vocabulary in {run_dir / 'vocab'} does not match the checkpoint's sizes {sizes}"
        )
    model = build_model(
        config.model, config.attention, src_vocab_size=sizes["src"], tgt_vocab_size=sizes["tgt"]
    )
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as err:
        raise CheckpointError(
            f"checkpoint {path} does not fit the model its config describes: {str(err)[:200]}"
        ) from None
    model.to(device).eval()
    return LoadedRun(
        run_dir, path, config, tokenizer, model, int(payload.get("progress", {}).get("step", 0))
    )
