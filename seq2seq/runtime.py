"""Hardware and process set-up shared by training, evaluation and the entry points: device,
precision (autocast), threads, seeds, malloc tuning, distributed (torchrun)."""

from __future__ import annotations

import contextlib
import logging
import os
import random
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from .config import option_value
from .errors import ConfigError

log = logging.getLogger("seq2seq")

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks up to 32 MiB for reuse instead of unmapping them
    or trimming the heap (the entry points call this first). A training or decoding step frees
    and re-allocates the same multi-MB tensors every time; with glibc's adaptive defaults they
    often come back as fresh pages, and the page faults cost more than the work: measured on
    2 cores, Transformer training 1.15x faster steps, and a one-thread int8 beam-5 decode 1.3x
    (its log_softmax 2.5x). The price: the process keeps its peak heap.

    A no-op (False) off glibc, when MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ are set
    (the user's choice wins) or when SEQ2SEQ_KEEP_FREED_MEMORY=0.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux") or os.environ.get("SEQ2SEQ_KEEP_FREED_MEMORY") == "0":
        return False
    if any(os.environ.get(k) for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and other C libraries
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def pick_device(requested: str, key: str = "trainer.device") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit device must be available (``key``:
    the option the messages name, ``device`` for evaluate and translate)."""
    requested = option_value(requested)
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", cuda_index())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{key}=cuda but no CUDA device is available; use {key}=auto or cpu")
        return torch.device("cuda", cuda_index())
    if requested == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ConfigError(f"{key}=mps but MPS is not available; use {key}=auto or cpu")
    return torch.device(requested)


def cuda_index() -> int:
    """This process's GPU: LOCAL_RANK's own where the node shows a GPU per rank (torchrun on a
    multi-GPU node); device 0 where the process sees one GPU (SLURM ``--gpus-per-task=1`` gives
    every task its own, as device 0, whatever its LOCAL_RANK). More ranks than visible GPUs
    share them round-robin (only the gloo backend allows that: SEQ2SEQ_DIST_BACKEND=gloo)."""
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    count = torch.cuda.device_count()
    if count <= 1:
        return 0
    if local_rank >= count:
        log.warning(
            "LOCAL_RANK %d but %d GPUs visible: sharing GPU %d",
            local_rank,
            count,
            local_rank % count,
        )
    return local_rank % count


def autocast_dtype(
    precision: str, device: torch.device, key: str = "trainer.precision"
) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None = fp32, no autocast); ``key``
    is the option the messages name."""
    precision = option_value(precision)
    if precision == "auto":
        precision = "bf16" if bf16_is_fast(device) else "fp32"
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise ConfigError(f"{key}=fp16 needs CUDA; on CPU use {key}=bf16")
        return torch.float16
    raise ConfigError(f"unknown precision {precision!r}; valid: fp32, bf16, fp16")


def bf16_is_fast(device: torch.device) -> bool:
    """Native bf16 matmuls: a CUDA GPU with bf16 tensor cores (Ampere on; not the emulation
    that ``torch.cuda.is_bf16_supported()`` also counts on older GPUs), or a CPU with
    AVX512-BF16 / AMX."""
    if device.type == "cuda":
        try:
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # a torch without the argument: compute capability 8.0 (Ampere) on
            return torch.cuda.get_device_capability(device) >= (8, 0)
    if device.type == "cpu":
        checks = [
            getattr(torch.cpu, name, None)
            for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        ]
        return any(check() for check in checks if check is not None)
    return False


def set_tf32(device: torch.device, amp_dtype: torch.dtype | None) -> None:
    """One TF32 rule for training and decoding on CUDA: allowed under autocast (bf16/fp16: the
    fp32 parts, e.g. the recurrent layers, run on tensor cores), off for fp32, where fp32 means
    fp32 for the matmuls and the cuDNN RNNs alike (cuDNN allows TF32 by default, the matmuls
    do not: a mix that made GPU results drift from the CPU's). A no-op off CUDA."""
    if device.type != "cuda":
        return
    allowed = amp_dtype is not None
    torch.backends.cuda.matmul.allow_tf32 = allowed
    torch.backends.cudnn.allow_tf32 = allowed


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


RANK_SEED_STRIDE = 1_000_003  # a prime: rank r's stream starts at seed + r * stride


def rank_seed(seed: int, rank: int) -> int:
    """The seed of DDP rank ``rank``'s training randomness (dropout masks, teacher-forcing and
    sampling coins, hard attention's draws): rank 0 keeps ``seed`` (a one-process run is
    unchanged), the others get their own streams, so no two ranks draw the same masks."""
    return seed + rank * RANK_SEED_STRIDE


def seed_rank(seed: int, rank: int) -> None:
    """Re-seed this process for training after the shared set-up (data, initial weights)."""
    if rank > 0:
        seed_everything(rank_seed(seed, rank))


def set_threads(num_threads: int | None) -> int:
    """Intra-op threads: by default the process's cores (torch's default is the physical core
    count), shared among the node's DDP ranks (torchrun's LOCAL_WORLD_SIZE): every rank
    claiming every core oversubscribes them."""
    if num_threads is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        num_threads = max(1, (cores or 1) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1))))
    if num_threads < 1:
        raise ConfigError(f"trainer.num_threads must be positive, got {num_threads}")
    torch.set_num_threads(int(num_threads))
    return torch.get_num_threads()


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")  # where collective tensors live (nccl: cuda)
    backend: str = ""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


DIST_TIMEOUT_S = 1800.0  # a collective that waits this long raises (SEQ2SEQ_DIST_TIMEOUT_S)


def dist_backend(device: torch.device) -> str:
    """nccl on CUDA, gloo on CPU; SEQ2SEQ_DIST_BACKEND=gloo on CUDA lets ranks share a GPU."""
    chosen = os.environ.get("SEQ2SEQ_DIST_BACKEND")
    if chosen:
        return chosen
    return "nccl" if device.type == "cuda" else "gloo"


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun or srun (WORLD_SIZE > 1): nccl on CUDA,
    gloo on CPU. The GPU is set before the group starts (NCCL binds to the current device) and
    a collective that waits longer than SEQ2SEQ_DIST_TIMEOUT_S seconds (default 1800: a long
    validation on rank 0 must fit) raises instead of waiting forever."""
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if world_size <= 1:
        return DistInfo()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = dist_backend(device)
    if not dist.is_initialized():
        timeout = float(os.environ.get("SEQ2SEQ_DIST_TIMEOUT_S", DIST_TIMEOUT_S))
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout))
    # gloo's collectives take CPU tensors (its CUDA support is partial); nccl's CUDA ones
    flags_device = device if backend == "nccl" else torch.device("cpu")
    return DistInfo(
        rank=dist.get_rank(), world_size=dist.get_world_size(), device=flags_device, backend=backend
    )


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every rank if ``flag`` is true on any rank (stop decisions stay in lockstep)."""
    if not info.enabled:
        return flag
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int32, device=info.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def broadcast_flag(flag: bool, info: DistInfo) -> bool:
    """Rank 0's ``flag`` on every rank."""
    if not info.enabled:
        return flag
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int32, device=info.device)
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())
