"""Setup functions: config -> the parts the training loop works on.

Each function builds one part from flat values or one config node; :func:`setup_parts` wires
them in the order that keeps seeded runs reproducible (seed, then data, then the model's
initial weights). The loop (:mod:`seq2seq.training.loop`) only receives the parts.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..config import to_container
from ..data.batching import BatchPlan
from ..data.pipeline import PreparedData
from ..errors import ConfigError
from ..models.base import Seq2Seq
from ..models.builders import build_model
from ..run_files import CHECKPOINTS, VOCAB
from ..runtime import (
    DistInfo,
    autocast_dtype,
    init_distributed,
    pick_device,
    set_tf32,
    set_threads,
)
from .logger import TrainLogger, make_logger
from .optim import Schedule, build_optimizer

log = logging.getLogger("seq2seq.train")


@dataclass
class Runtime:
    """Where and how this process trains."""

    device: torch.device
    amp_dtype: torch.dtype | None  # None: fp32, no autocast
    dist: DistInfo
    threads: int

    @property
    def precision(self) -> str:
        return precision_name(self.amp_dtype)


@dataclass
class TrainingParts:
    """Everything the loop works on."""

    model: Seq2Seq  # the bare model: checkpoints, validation, decoding
    train_model: nn.Module  # what a training step runs: the model, or its DDP/compiled wrapper
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    scaler: torch.amp.GradScaler
    data: PreparedData
    plan: BatchPlan  # the training batches of this rank
    runtime: Runtime
    logger: TrainLogger
    run_dir: Path
    config: dict  # the resolved run config, saved in every checkpoint
    vocab: dict  # spm: sentencepiece files relative to run_dir; vocab_sizes: src/tgt

    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / CHECKPOINTS


def precision_name(amp_dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype]


def setup_runtime(trainer_cfg: Any) -> Runtime:
    """Device (``trainer.device``), autocast dtype (``trainer.precision``), the DDP process
    group when launched by torchrun, intra-op threads."""
    device = pick_device(trainer_cfg.device)
    amp_dtype = autocast_dtype(trainer_cfg.precision, device)
    set_tf32(device, amp_dtype)
    dist = init_distributed(device)
    threads = set_threads(trainer_cfg.num_threads)
    return Runtime(device, amp_dtype, dist, threads)


def check_writable(run_dir: Path) -> None:
    """Create ``run_dir/checkpoints`` and write a probe there; ConfigError in one line if not."""
    ckpt_dir = run_dir / CHECKPOINTS
    try:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        # one probe per process: DDP ranks check the same directory at the same time
        probe = ckpt_dir / f".write_test.{os.getpid()}"
        probe.write_bytes(b"\0" * 4096)
        probe.unlink()
    except OSError as err:
        raise not_writable(run_dir, err) from None


def not_writable(run_dir: Path, err: OSError) -> ConfigError:
    return ConfigError(
        f"run directory {run_dir} is not writable ({err.strerror}); choose hydra.run.dir=DIR"
    )


def setup_model(
    model_cfg: Any, attention_cfg: Any, *, src_vocab_size: int, tgt_vocab_size: int
) -> Seq2Seq:
    """The model the config describes (config objects stop at the builder)."""
    return build_model(
        model_cfg, attention_cfg, src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size
    )


def setup_optimizer(model: nn.Module, optim_cfg: Any) -> tuple[torch.optim.Optimizer, Schedule]:
    o = optim_cfg
    optimizer = build_optimizer(
        model, name=o.name, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay
    )
    schedule = Schedule(
        optimizer,
        kind=o.schedule,
        lr=o.lr,
        warmup_steps=o.warmup_steps,
        factor=o.plateau_factor,
        patience=o.plateau_patience,
        min_lr=o.min_lr,
        decay_steps=o.decay_steps,
    )
    return optimizer, schedule


def setup_plan(data: PreparedData, *, max_tokens: int, seed: int, dist: DistInfo) -> BatchPlan:
    """Token-bucketed training batches; DDP ranks get disjoint shards. ConfigError when
    ``data.max_tokens`` is below every pair's length; a warning when only some exceed it."""
    train = data.splits["train"]
    plan = BatchPlan(
        train.src_ids,
        train.tgt_ids,
        max_tokens=max_tokens,
        seed=seed,
        num_shards=dist.world_size,
        shard_id=dist.rank,
    )
    lengths = np.maximum(plan.src_lengths, plan.tgt_lengths)  # a pair's padded row, per side
    if len(lengths) and int(lengths.min()) > max_tokens:
        raise ConfigError(
            f"data.max_tokens={max_tokens} is below the length of every training pair (the "
            f"shortest has {int(lengths.min())} tokens, the longest {int(lengths.max())}): no "
            f"batch would fit one; set data.max_tokens={int(lengths.max())} or more"
        )
    over = int((lengths > max_tokens).sum())
    if over:
        log.warning(
            "%d of %d training pairs are longer than data.max_tokens=%d (up to %d tokens): each "
            "goes in a batch of its own; set data.max_tokens=%d or more to batch them",
            over,
            len(lengths),
            max_tokens,
            int(lengths.max()),
            int(lengths.max()),
        )
    if plan.num_batches(0) == 0:
        raise ConfigError(
            f"no training batch on rank {dist.rank}: the training split is too small for "
            f"{dist.world_size} processes"
        )
    return plan


def wrap_for_training(model: Seq2Seq, runtime: Runtime, *, compile: bool) -> nn.Module:
    """DDP across torchrun's processes, then ``torch.compile`` when asked."""
    wrapped: nn.Module = model
    if runtime.dist.enabled:
        device = runtime.device
        wrapped = DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            broadcast_buffers=has_state_buffers(model),
        )
    if compile:
        wrapped = torch.compile(wrapped)
    return wrapped


def has_state_buffers(model: nn.Module) -> bool:
    """Whether the model keeps state in buffers (persistent ones, e.g. hard attention's reward
    baseline) that DDP must keep equal on every rank by broadcasting them every forward; the
    Transformer's sinusoidal tables (non-persistent, constant) need no broadcast."""
    saved = set(model.state_dict())
    return any(name in saved for name, _ in model.named_buffers())


def setup_logger(logger_cfg: Any, run_dir: Path, dist: DistInfo, config: dict) -> TrainLogger:
    return make_logger(logger_cfg, run_dir, is_main=dist.is_main, config=config)


def copy_vocabulary(tok, run_dir: Path) -> dict[str, str]:
    """Copy the sentencepiece model(s) into the run's vocabulary folder so the run is
    self-contained; return their paths relative to ``run_dir`` (saved in every checkpoint)."""
    (run_dir / VOCAB).mkdir(parents=True, exist_ok=True)
    files = (
        {"src": f"{VOCAB}/spm.model", "tgt": f"{VOCAB}/spm.model"}
        if tok.joint
        else {"src": f"{VOCAB}/src.model", "tgt": f"{VOCAB}/tgt.model"}
    )
    for side, source in (("src", tok.src_model_path), ("tgt", tok.tgt_model_path)):
        target = run_dir / files[side]
        if not target.is_file():
            tmp = target.with_suffix(".tmp")
            shutil.copyfile(source, tmp)
            tmp.replace(target)
    return files


def setup_parts(cfg: Any, runtime: Runtime, data: PreparedData) -> TrainingParts:
    """Every part of a run, from the composed config, the runtime and the prepared data."""
    run_dir = Path(cfg.run_dir)
    config = to_container(cfg)
    tok = data.tokenizer
    plan = setup_plan(  # first: a data.max_tokens no pair fits fails before any work
        data, max_tokens=cfg.data.max_tokens, seed=cfg.trainer.seed, dist=runtime.dist
    )
    spm = copy_vocabulary(tok, run_dir) if runtime.dist.is_main else {}
    model = setup_model(
        cfg.model,
        cfg.attention,
        src_vocab_size=tok.src_vocab_size,
        tgt_vocab_size=tok.tgt_vocab_size,
    ).to(runtime.device)
    optimizer, schedule = setup_optimizer(model, cfg.optim)
    scaler = torch.amp.GradScaler("cuda", enabled=runtime.amp_dtype == torch.float16)
    return TrainingParts(
        model=model,
        train_model=wrap_for_training(model, runtime, compile=cfg.trainer.compile),
        optimizer=optimizer,
        schedule=schedule,
        scaler=scaler,
        data=data,
        plan=plan,
        runtime=runtime,
        logger=setup_logger(cfg.logger, run_dir, runtime.dist, config),
        run_dir=run_dir,
        config=config,
        vocab={
            "spm": spm,
            "vocab_sizes": {"src": tok.src_vocab_size, "tgt": tok.tgt_vocab_size},
        },
    )
