"""Our side of the speed benchmark: training throughput, decoding speed, matmul peak, FLOP rate.

Every figure is measured in this process, configurations alternating, so ratios between them
come from one run on the same (possibly noisy) machine.

Why this stays in the installed package while the peer harness (``benchmarks/peers``) does not:
it measures only our own models, with our own training step and decoder, for the installed
``seq2seq-benchmark`` command, which a user runs without a source checkout; it needs nothing
beyond the package's dependencies. The peer harness drives other toolkits in their own venvs,
which only a checkout sets up (``make bench-peers``), and no user code imports it.
"""

from __future__ import annotations

import copy
import resource
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import open_dict
from torch.utils.flop_counter import FlopCounterMode

from ..data.pipeline import PreparedData
from ..decode_defaults import ALPHA
from ..models.base import Seq2Seq
from ..runtime import DistInfo, autocast
from ..training import loop
from ..training.setup import Runtime, setup_parts


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def matmul_peak(
    shapes: list[tuple[int, int, int]], dtype: torch.dtype, *, repeats: int = 10
) -> float:
    """Best GFLOP/s of ``torch.mm`` over (m, k, n) shapes at ``dtype`` on the CPU."""
    best = 0.0
    for m, k, n in shapes:
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        for _ in range(2):
            torch.mm(a, b)
        start = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        seconds = (time.perf_counter() - start) / repeats
        best = max(best, 2 * m * k * n / seconds / 1e9)
    return best


def model_matmul_shapes(model: Seq2Seq, tokens: int) -> list[tuple[int, int, int]]:
    """(tokens, in, out) of the model's distinct Linear layers: the shapes its matmuls run at."""
    shapes = {
        (tokens, m.in_features, m.out_features)
        for m in model.modules()
        if isinstance(m, torch.nn.Linear)
    }
    return sorted(shapes)[:8]


@dataclass
class TrainSpeed:
    tokens_per_s: float  # real (non-pad) target tokens per second
    tokens_per_step: float
    step_s: float
    flops_per_step: float  # counted by torch's FlopCounterMode on one step (forward + backward)
    peak_rss_mb: float


def measure_training(
    cfg: Any, data: PreparedData, *, amp_dtype: torch.dtype | None, warmup: int, steps: int
) -> tuple[TrainSpeed, Seq2Seq]:
    """Train ``warmup`` + ``steps`` steps of the run ``cfg`` describes on its training batches;
    time the last ``steps``. The parts come from the training's own :func:`setup_parts` and each
    step is the training loop's :func:`seq2seq.training.loop.train_step` (optimizer, clipping,
    grad scaler, auxiliary losses and all), so a change to the step shows here. Returns the
    figures and the trained model."""
    cfg = copy.deepcopy(cfg)
    with tempfile.TemporaryDirectory(prefix="seq2seq-bench-") as run_dir, open_dict(cfg):
        cfg.run_dir = run_dir
        cfg.logger.name = "off"
        runtime = Runtime(torch.device("cpu"), amp_dtype, DistInfo(), torch.get_num_threads())
        parts = setup_parts(cfg, runtime, data)
        options = {
            "label_smoothing": cfg.trainer.label_smoothing,
            "clip_grad_norm": cfg.optim.clip_grad_norm,
        }
        batches = parts.plan.epoch(0)

        def step(batch) -> None:
            loop.train_step(parts, [batch], **options)  # looked up here: the real one

        for _ in range(warmup):
            step(next(batches))
        timed = [next(batches) for _ in range(steps)]
        with FlopCounterMode(display=False) as counter:
            step(timed[0])
        flops = counter.get_total_flops()
        start = time.perf_counter()
        for batch in timed:
            step(batch)
        seconds = time.perf_counter() - start
        parts.logger.close()
    tokens = sum(b.num_tgt_tokens for b in timed)
    speed = TrainSpeed(
        tokens / seconds, tokens / steps, seconds / steps, float(flops), peak_rss_mb()
    )
    return speed, parts.model


@dataclass
class DecodeSpeed:
    sentences_per_s: float
    tokens_per_s: float  # output tokens per second
    seconds: float
    sentences: int


class FixedLength(Seq2Seq):
    """Wraps a model so every hypothesis has exactly ``length`` tokens: EOS is never chosen and
    decoding stops at ``length`` steps.

    An untrained model emits junk of varying length; forcing the length makes decoding a
    checkpoint-independent workload, the same for every toolkit: the peers get min = max length,
    and OpenNMT-py, too, runs exactly max-length steps and emits no EOS.
    """

    def __init__(self, model: Seq2Seq, length: int) -> None:
        super().__init__()
        self.model, self.length = model, length

    @property
    def has_alignment(self) -> bool:
        return self.model.has_alignment

    @property
    def max_decode_length(self) -> int | None:
        return self.model.max_decode_length

    def encode(self, src, src_mask):
        return self.model.encode(src, src_mask)

    def reorder_state(self, state, order):
        return self.model.reorder_state(state, order)

    def decode_step(self, prev_tokens, state, step, *, need_attn=False):
        out = self.model.decode_step(prev_tokens, state, step, need_attn=need_attn)
        out.log_probs[:, self.eos_id] = float("-inf")
        return out


def measure_fixed_decoding(
    model: Seq2Seq,
    src_ids: list[list[int]],
    *,
    beam_size: int,
    length: int,
    amp_dtype: torch.dtype | None,
    batch_size: int = 64,
) -> DecodeSpeed:
    """Decode with every output exactly ``length`` tokens; tokens/s counts those tokens (no EOS)."""
    from ..decoding import translate_batches

    wrapped = FixedLength(model, length).eval()
    start = time.perf_counter()
    with autocast(torch.device("cpu"), amp_dtype):
        hyps = translate_batches(
            wrapped,
            src_ids,
            beam_size=beam_size,
            batch_size=batch_size,
            alpha=ALPHA,
            max_len_ratio=0.0,
            max_len_offset=length,
            device="cpu",
        )
    seconds = time.perf_counter() - start
    lengths = {len(h.tokens) for h in hyps}
    if lengths - {length}:
        raise RuntimeError(
            f"fixed-length decoding produced lengths {sorted(lengths)}, not {length}"
        )
    tokens = sum(len(h.tokens) for h in hyps)
    return DecodeSpeed(len(src_ids) / seconds, tokens / seconds, seconds, len(src_ids))
