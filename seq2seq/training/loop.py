"""The training loop: budgets, validation BLEU, checkpoints and resume, TensorBoard, AMP, DDP.

``train(cfg)`` is a plain function of the composed config; the Hydra entry point
(seq2seq.cli.train) only calls it. Everything it writes goes under ``cfg.run_dir``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch.nn.parallel import DistributedDataParallel

from ..checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from ..config import to_container
from ..data.batching import BatchPlan
from ..data.pipeline import PreparedData, prepare_data
from ..errors import CheckpointError, ConfigError
from ..evaluation.bleu import corpus_scores
from ..models.base import Seq2Seq
from ..models.builders import build_model
from ..runtime import (
    DistInfo,
    any_rank,
    autocast,
    autocast_dtype,
    broadcast_flag,
    init_distributed,
    pick_device,
    seed_everything,
    set_threads,
)
from ..validation import check_train_config
from .loss import output_losses, token_losses
from .optim import Schedule, build_optimizer

log = logging.getLogger("seq2seq.train")


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # current epoch (0-based)
    batch_in_epoch: int = 0  # batches of `epoch` already consumed
    train_time: float = 0.0  # seconds spent in the training phase, across resumes
    step_time: float = 0.0  # seconds inside optimizer steps only (throughput), across resumes
    train_tokens: int = 0  # real target tokens seen
    best_bleu: float = -1.0
    best_step: int = 0
    bad_validations: int = 0  # validations since the best one (early stopping)
    skipped_steps: int = 0  # non-finite losses skipped
    history: list[dict] = field(default_factory=list)  # one entry per validation


class StopRequested:
    """SIGINT/SIGTERM set a flag; the loop saves ``last.pt`` at the next step and exits."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequested:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no signal handling
                pass
        return self

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        if self.signal is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def model_config_dict(cfg: DictConfig) -> dict:
    return {"model": to_container(cfg.model), "attention": to_container(cfg.attention)}


def make_model(cfg: DictConfig, src_vocab_size: int, tgt_vocab_size: int) -> Seq2Seq:
    return build_model(
        cfg.model, cfg.attention, src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size
    )


def decode_split(
    model: Seq2Seq,
    data: PreparedData,
    split: str,
    *,
    device: torch.device,
    beam_size: int,
    alpha: float,
    max_len_ratio: float,
    max_len_offset: int,
    batch_size: int,
    amp_dtype: torch.dtype | None,
    need_attn: bool = False,
    limit: int | None = None,
    workers: int | None = None,
) -> tuple[list[str], list]:
    """Decode a prepared split; return detokenized hypotheses and the raw hypotheses."""
    from ..decoding import translate_batches

    src_ids = [ids.tolist() for ids in data.splits[split].src_ids[:limit]]
    with autocast(device, amp_dtype):
        hyps = translate_batches(
            model,
            src_ids,
            beam_size=beam_size,
            batch_size=batch_size,
            alpha=alpha,
            max_len_ratio=max_len_ratio,
            max_len_offset=max_len_offset,
            need_attn=need_attn,
            device=device,
            workers=workers,
        )
    return data.tokenizer.decode_tgt([h.tokens for h in hyps]), hyps


class Trainer:
    def __init__(self, cfg: DictConfig) -> None:
        check_train_config(cfg)  # ranges and relations, before any data or device work
        self.cfg = cfg
        self.run_dir = Path(cfg.run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        tcfg = cfg.trainer
        self.device = pick_device(tcfg.device)
        self.amp_dtype = autocast_dtype(tcfg.precision, self.device)
        self.dist: DistInfo = init_distributed(self.device)
        self.threads = set_threads(tcfg.num_threads)
        self._check_writable()
        seed_everything(tcfg.seed)

        self.data = prepare_data(cfg.data)
        tok = self.data.tokenizer
        self.vocab_files = copy_vocabulary(tok, self.run_dir) if self.dist.is_main else {}
        self.model = make_model(cfg, tok.src_vocab_size, tok.tgt_vocab_size).to(self.device)
        self.params = self.model.num_parameters()
        ocfg = cfg.optim
        if ocfg.accumulate < 1:
            raise ConfigError(f"optim.accumulate must be >= 1, got {ocfg.accumulate}")
        self.optimizer = build_optimizer(
            self.model, name=ocfg.name, lr=ocfg.lr, betas=ocfg.betas, weight_decay=ocfg.weight_decay
        )
        self.schedule = Schedule(
            self.optimizer,
            kind=ocfg.schedule,
            lr=ocfg.lr,
            warmup_steps=ocfg.warmup_steps,
            factor=ocfg.plateau_factor,
            patience=ocfg.plateau_patience,
            min_lr=ocfg.min_lr,
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        train = self.data.splits["train"]
        self.plan = BatchPlan(
            train.src_ids,
            train.tgt_ids,
            max_tokens=cfg.data.max_tokens,
            seed=tcfg.seed,
            num_shards=self.dist.world_size,
            shard_id=self.dist.rank,
        )
        if self.plan.num_batches(0) == 0:
            raise ConfigError(
                f"no training batch on rank {self.dist.rank}: the training split is too small for "
                f"{self.dist.world_size} processes"
            )
        self.progress = Progress()
        self.train_model: torch.nn.Module = self.model
        if self.dist.enabled:
            self.train_model = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        if tcfg.compile:
            self.train_model = torch.compile(self.train_model)
        self.writer = None
        if self.dist.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(self.run_dir / "tb"))

    # ------------------------------------------------------------------ checks

    def _check_writable(self) -> None:
        try:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            # one probe per process: DDP ranks check the same directory at the same time
            probe = self.ckpt_dir / f".write_test.{os.getpid()}"
            probe.write_bytes(b"\0" * 4096)
            probe.unlink()
        except OSError as err:
            raise ConfigError(
                f"run directory {self.run_dir} is not writable ({err.strerror}); choose hydra.run.dir=DIR"
            ) from None

    # ------------------------------------------------------------------ checkpoints

    def checkpoint_payload(self) -> dict:
        tok = self.data.tokenizer
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "progress": self.progress.__dict__ | {"history": list(self.progress.history)},
            "config": to_container(self.cfg),
            "spm": self.vocab_files,  # relative to the run directory
            "vocab_sizes": {"src": tok.src_vocab_size, "tgt": tok.tgt_vocab_size},
        }

    def save(self, name: str) -> None:
        if self.dist.is_main:
            save_checkpoint(self.checkpoint_payload(), self.ckpt_dir / name)

    def resume(self) -> bool:
        path = self.ckpt_dir / "last.pt"
        if not path.is_file():
            log.info("trainer.resume=true but %s does not exist: starting from scratch", path)
            return False
        payload = load_checkpoint(path, map_location=self.device)
        check_compatible(payload, self.cfg, self.data)
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.schedule.load_state_dict(payload["schedule"])
        self.scaler.load_state_dict(payload["scaler"])
        set_rng_state(payload["rng"])
        self.progress = Progress(**payload["progress"])
        if self.dist.is_main:
            rewrite_history(self.run_dir / "history.jsonl", self.progress.history)
        self.schedule.step(self.progress.step + 1)  # the lr of the next step, as in fit()
        log.info(
            "resumed from %s at step %d (epoch %d)", path, self.progress.step, self.progress.epoch
        )
        return True

    # ------------------------------------------------------------------ training

    def budget_reached(self) -> str | None:
        t, p = self.cfg.trainer, self.progress
        if t.max_steps is not None and p.step >= t.max_steps:
            return f"max_steps={t.max_steps}"
        if t.max_epochs is not None and p.epoch >= t.max_epochs:
            return f"max_epochs={t.max_epochs}"
        if t.max_time is not None and p.train_time >= t.max_time:
            return f"max_time={t.max_time}s"
        return None

    def train_step(self, batches: list) -> tuple[float, int, float | None]:
        """One optimizer step over ``batches`` (gradient accumulation); returns loss/token,
        tokens, grad norm (None when the step was skipped for a non-finite loss)."""
        self.train_model.train()
        ls = self.cfg.trainer.label_smoothing
        total_loss, total_tokens = 0.0, 0
        finite = True
        for i, batch in enumerate(batches):
            batch = batch.to(self.device, non_blocking=True)
            tokens = batch.num_tgt_tokens
            sync = i == len(batches) - 1 or not self.dist.enabled
            ctx = (
                self.train_model.no_sync()
                if not sync and self.dist.enabled
                else contextlib.nullcontext()
            )
            with ctx:
                with autocast(self.device, self.amp_dtype):
                    out = self.train_model(
                        batch.src, batch.src_mask, batch.tgt_in, batch.tgt_mask, features_only=True
                    )
                    loss, _ = output_losses(
                        out.features, self.model.output_layer, batch.tgt_out, label_smoothing=ls
                    )
                # mean over tokens per batch, then over batches: matches DDP's gradient averaging
                scaled = loss / max(tokens, 1) / len(batches)
                if not torch.isfinite(scaled):
                    finite = False
                self.scaler.scale(scaled).backward()
            total_loss += float(loss.detach())
            total_tokens += tokens
        finite = not any_rank(not finite, self.dist)
        if not finite:
            self.optimizer.zero_grad(set_to_none=True)
            return float("nan"), total_tokens, None
        self.scaler.unscale_(self.optimizer)
        clip = self.cfg.optim.clip_grad_norm
        params = [p for p in self.model.parameters() if p.grad is not None]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return total_loss / max(total_tokens, 1), total_tokens, float(grad_norm)

    def fit(self) -> str:
        """Train until a budget, early stopping or a signal; return why training ended."""
        tcfg = self.cfg.trainer
        if tcfg.resume:
            self.resume()
        p = self.progress
        accumulate = self.cfg.optim.accumulate
        bar = _progress_bar(self.dist.is_main, tcfg)
        window_tokens, window_time, window_loss, window_steps = 0, 0.0, 0.0, 0
        reason = self.budget_reached()
        with StopRequested() as stop:
            while reason is None:
                batches_of_epoch = self.plan.epoch_indices(p.epoch)
                iterator = self.plan.epoch(p.epoch, start=p.batch_in_epoch)
                pending: list = []
                for batch in iterator:
                    pending.append(batch)
                    p.batch_in_epoch += 1
                    if len(pending) < accumulate and p.batch_in_epoch < len(batches_of_epoch):
                        continue
                    t0 = time.perf_counter()
                    loss, tokens, grad_norm = self.train_step(pending)
                    pending = []
                    elapsed = time.perf_counter() - t0
                    p.train_time += elapsed
                    p.step_time += elapsed
                    p.train_tokens += tokens * self.dist.world_size
                    if grad_norm is None:
                        p.skipped_steps += 1
                        self._bad_steps = getattr(self, "_bad_steps", 0) + 1
                        log.warning("non-finite loss: step skipped (%d in a row)", self._bad_steps)
                        if self._bad_steps >= tcfg.max_bad_steps:
                            reason = f"{self._bad_steps} {DIVERGED_REASON}"
                            break
                        continue
                    self._bad_steps = 0
                    p.step += 1
                    self.schedule.step(p.step + 1)
                    window_tokens += tokens * self.dist.world_size
                    window_time += elapsed
                    window_loss += loss
                    window_steps += 1
                    if self.dist.is_main and p.step % tcfg.log_every == 0:
                        tok_s = window_tokens / max(window_time, 1e-9)
                        self._log_train(window_loss / window_steps, tok_s, grad_norm, bar)
                        window_tokens, window_time, window_loss, window_steps = 0, 0.0, 0.0, 0
                    if bar is not None:
                        bar.update(1)
                    if p.step % tcfg.val_every == 0:
                        t_val = time.perf_counter()
                        self.validate()
                        p.train_time += time.perf_counter() - t_val
                        if tcfg.patience is not None and broadcast_flag(
                            p.bad_validations >= tcfg.patience, self.dist
                        ):
                            reason = f"early stopping (no BLEU gain in {tcfg.patience} validations)"
                    if stop.signal is not None or any_rank(stop.signal is not None, self.dist):
                        reason = f"signal {signal.Signals(stop.signal or signal.SIGTERM).name}"
                        break
                    reason = reason or self.budget_reached()
                    if reason:
                        break
                else:
                    p.epoch += 1
                    p.batch_in_epoch = 0
                    reason = self.budget_reached()
        if bar is not None:
            bar.close()
        if not reason.startswith("signal") and p.step % tcfg.val_every != 0 and p.step > 0:
            self.validate()  # the final state is validated too, so best.pt reflects it (same test on every rank)
        self.save("last.pt")
        return reason

    def _log_train(self, loss: float, tok_s: float, grad_norm: float, bar) -> None:
        p = self.progress
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss, p.step)
            self.writer.add_scalar("train/lr", self.schedule.lr, p.step)
            self.writer.add_scalar("train/grad_norm", grad_norm, p.step)
            self.writer.add_scalar("train/tokens_per_sec", tok_s, p.step)
        if bar is not None:
            bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tok_s:.0f}", lr=f"{self.schedule.lr:.2e}")
        else:
            log.info(
                "step %d epoch %d loss %.3f lr %.2e tokens/s %.0f",
                p.step,
                p.epoch,
                loss,
                self.schedule.lr,
                tok_s,
            )

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validation_loss(self) -> tuple[float, float]:
        self.model.eval()
        split = self.data.splits["validation"]
        plan = BatchPlan(
            split.src_ids, split.tgt_ids, max_tokens=self.cfg.data.max_tokens, shuffle=False
        )
        nll_sum, tokens = 0.0, 0
        for batch in plan.epoch(0):
            batch = batch.to(self.device)
            with autocast(self.device, self.amp_dtype):
                out = self.model(batch.src, batch.src_mask, batch.tgt_in, batch.tgt_mask)
            _, nll = token_losses(out.logits, batch.tgt_out)
            nll_sum += float(nll)
            tokens += batch.num_tgt_tokens
        loss = nll_sum / max(tokens, 1)
        return loss, math.exp(min(loss, 50.0))

    def validate(self) -> None:
        """Rank 0: loss, perplexity, greedy BLEU/chrF; best.pt on improvement. Others wait."""
        p = self.progress
        if self.dist.is_main:
            t0 = time.perf_counter()
            loss, ppl = self.validation_loss()
            dcfg = self.cfg.decode
            hyps, raw = decode_split(
                self.model,
                self.data,
                "validation",
                device=self.device,
                beam_size=1,
                alpha=0.0,
                max_len_ratio=self.cfg.trainer.val_max_len_ratio,
                max_len_offset=dcfg.max_len_offset,
                batch_size=dcfg.batch_size,
                workers=dcfg.workers,
                amp_dtype=self.amp_dtype,
                need_attn=self.cfg.trainer.heatmaps > 0 and self.model.has_alignment,
            )
            scores = corpus_scores(hyps, self.data.splits["validation"].tgt_text)
            improved = scores["bleu"] > p.best_bleu
            if improved:
                p.best_bleu, p.best_step, p.bad_validations = scores["bleu"], p.step, 0
            else:
                p.bad_validations += 1
            self.schedule.validated(scores["bleu"])
            entry = {
                "step": p.step,
                "epoch": p.epoch,
                "train_time": round(p.train_time, 2),
                "val_loss": round(loss, 4),
                "val_ppl": round(ppl, 2),
                "val_bleu": scores["bleu"],
                "val_chrf": scores["chrf"],
                "lr": self.schedule.lr,
            }
            p.history.append(entry)
            with open(self.run_dir / "history.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
            if self.writer is not None:
                for key in ("val_loss", "val_ppl", "val_bleu", "val_chrf"):
                    self.writer.add_scalar(f"valid/{key[4:]}", entry[key], p.step)
                self._heatmaps(raw)
                self.writer.flush()
            if improved:
                self.save("best.pt")
            self.save("last.pt")
            log.info(
                "validation at step %d: loss %.3f ppl %.2f BLEU %.2f chrF %.2f%s (%.1fs)",
                p.step,
                loss,
                ppl,
                scores["bleu"],
                scores["chrf"],
                " *best*" if improved else "",
                time.perf_counter() - t0,
            )
        if self.dist.enabled:
            # every rank keeps the same early-stopping and plateau state
            state = [p.bad_validations, p.best_step, self.schedule.state_dict()]
            torch.distributed.broadcast_object_list(state, src=0)
            p.bad_validations, p.best_step = state[0], state[1]
            self.schedule.load_state_dict(state[2])
            self.schedule.step(p.step + 1)

    def _heatmaps(self, raw: list) -> None:
        count = self.cfg.trainer.heatmaps
        if count <= 0 or not self.model.has_alignment or not raw or raw[0].attn is None:
            return
        from ..evaluation.alignments import hypothesis_matrix, hypothesis_pieces
        from ..evaluation.heatmap import alignment_figure

        tok = self.data.tokenizer
        split = self.data.splits["validation"]
        for i in range(min(count, len(raw))):
            src_tokens = tok.src_pieces(split.src_ids[i].tolist())
            weights = hypothesis_matrix(raw[i], len(src_tokens))
            fig = alignment_figure(weights, src_tokens, hypothesis_pieces(tok, raw[i]))
            self.writer.add_figure(f"attention/val_{i}", fig, self.progress.step)

    # ------------------------------------------------------------------ test

    def test(self) -> dict:
        """Decode the test split with the best checkpoint and beam search; write hyps and metrics."""
        best = self.ckpt_dir / "best.pt"
        if best.is_file():
            self.model.load_state_dict(load_checkpoint(best, map_location=self.device)["model"])
        dcfg = self.cfg.decode
        dump = bool(self.cfg.dump_alignments)
        t0 = time.perf_counter()
        hyps, raw = decode_split(
            self.model,
            self.data,
            "test",
            device=self.device,
            beam_size=dcfg.beam_size,
            alpha=dcfg.alpha,
            max_len_ratio=dcfg.max_len_ratio,
            max_len_offset=dcfg.max_len_offset,
            batch_size=dcfg.batch_size,
            workers=dcfg.workers,
            amp_dtype=self.amp_dtype,
            need_attn=dump and self.model.has_alignment,
        )
        decode_time = time.perf_counter() - t0
        if dump:
            from ..evaluation.alignments import dump_alignments

            acfg = self.cfg.alignment
            dump_alignments(
                self.data.tokenizer,
                self.data.splits["test"].src_text,
                raw,
                self.run_dir,
                name="test",
                has_alignment=self.model.has_alignment,
                hard=acfg.hard,
                threshold=acfg.threshold,
                plot_ids=acfg.plot_ids,
                plot_first=acfg.plot_first,
            )
        (self.run_dir / "hyps").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "hyps" / "test.txt").write_text(
            "".join(h + "\n" for h in hyps), encoding="utf-8"
        )
        scores = corpus_scores(hyps, self.data.splits["test"].tgt_text)
        return scores | {"test_decode_s": round(decode_time, 2)}


def precision_name(amp_dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype]


def copy_vocabulary(tok, run_dir: Path) -> dict[str, str]:
    """Copy the sentencepiece model(s) into ``run_dir/vocab`` so the run is self-contained."""
    vocab_dir = run_dir / "vocab"
    vocab_dir.mkdir(parents=True, exist_ok=True)
    files = (
        {"src": "vocab/spm.model", "tgt": "vocab/spm.model"}
        if tok.joint
        else {
            "src": "vocab/src.model",
            "tgt": "vocab/tgt.model",
        }
    )
    for side, source in (("src", tok.src_model_path), ("tgt", tok.tgt_model_path)):
        target = run_dir / files[side]
        if not target.is_file():
            tmp = target.with_suffix(".tmp")
            shutil.copyfile(source, tmp)
            tmp.replace(target)
    return files


def rewrite_history(path: Path, history: list[dict]) -> None:
    """Make history.jsonl the checkpoint's validations: a kill between appending a line and
    saving last.pt left lines that training now redoes (they would appear twice)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(entry) + "\n" for entry in history), encoding="utf-8")
    tmp.replace(path)


def _progress_bar(is_main: bool, tcfg):
    if not is_main or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=tcfg.max_steps, unit="step", dynamic_ncols=True)


def check_compatible(payload: dict, cfg: DictConfig, data: PreparedData) -> None:
    """A checkpoint must come from the same model family and vocabulary as the config."""
    saved = payload.get("config", {})
    family = saved.get("model", {}).get("name")
    if family != cfg.model.name:
        raise CheckpointError(
            f"checkpoint holds a {family!r} model but the config asks for model={cfg.model.name}"
        )
    sizes = payload.get("vocab_sizes", {})
    tok = data.tokenizer
    if sizes and (sizes.get("src"), sizes.get("tgt")) != (tok.src_vocab_size, tok.tgt_vocab_size):
        raise CheckpointError(
            f"checkpoint vocabulary {sizes.get('src')}/{sizes.get('tgt')} differs from the data's "
            f"{tok.src_vocab_size}/{tok.tgt_vocab_size}: use the same data.vocab settings"
        )


# stop reason of a run whose loss went non-finite trainer.max_bad_steps times in a row
DIVERGED_REASON = "consecutive non-finite losses (lower optim.lr or use fp32)"


def train(cfg: DictConfig) -> dict:
    """Train, then evaluate the best checkpoint on test; return (and write) metrics.json."""
    wall_start = time.perf_counter()
    trainer = Trainer(cfg)
    try:
        log.info(
            "model %s/%s: %d parameters on %s (%s, %d threads)",
            cfg.model.name,
            cfg.attention.name,
            trainer.params,
            trainer.device,
            precision_name(trainer.amp_dtype),
            trainer.threads,
        )
        reason = trainer.fit()
        p = trainer.progress
        if reason.startswith("signal"):
            print(
                f"interrupted ({reason}) at step {p.step}: checkpoints/last.pt saved; resume with "
                f"seq2seq-train <same overrides> hydra.run.dir={trainer.run_dir} trainer.resume=true",
                file=sys.stderr,
            )
            return {"status": "interrupted", "steps": p.step}
        log.info("training ended at step %d: %s", p.step, reason)
        if not trainer.dist.is_main:
            return {}
        test = trainer.test()
        metrics = {
            # diverged: scored on its best checkpoint, but not comparable with a finished run
            "status": "diverged" if reason.endswith(DIVERGED_REASON) else "finished",
            "stop_reason": reason,
            "model": cfg.model.name,
            "attention": cfg.attention.name if cfg.model.name == "rnn" else "multihead",
            "params": trainer.params,
            "steps": p.step,
            "epochs": p.epoch + p.batch_in_epoch / max(1, trainer.plan.num_batches(p.epoch)),
            "val_bleu": p.best_bleu,
            "best_step": p.best_step,
            "test_bleu": test["bleu"],
            "test_chrf": test["chrf"],
            "test_bleu_lc": test["bleu_lc"],
            "sacrebleu_signature": test["signature"],
            "chrf_signature": test["chrf_signature"],
            "beam_size": cfg.decode.beam_size,
            "train_tokens_per_sec": round(p.train_tokens / max(p.step_time, 1e-9), 1),
            "train_time_s": round(p.train_time, 1),
            "test_decode_s": test["test_decode_s"],
            "skipped_steps": p.skipped_steps,
            "wall_time_s": round(time.perf_counter() - wall_start, 1),
            "device": str(trainer.device),
            "precision": precision_name(trainer.amp_dtype),
        }
        (trainer.run_dir / "metrics.json").write_text(
            json.dumps(metrics, indent=2) + "\n", encoding="utf-8"
        )
        print(
            f"test BLEU {test['bleu']:.2f} chrF {test['chrf']:.2f} (beam {cfg.decode.beam_size}) {test['signature']}"
        )
        print(
            f"lowercased BLEU (bleu_lc, for comparison with published figures only): {test['bleu_lc']:.2f}"
        )
        return metrics
    finally:
        if trainer.writer is not None:
            trainer.writer.close()
        if trainer.dist.enabled and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
