"""The GPU and DDP paths that a CPU can check without a process group: which GPU a rank
takes, how the process group starts, resume onto another device, per-rank generator states,
and fp16 steps the GradScaler skips."""

from __future__ import annotations

from datetime import timedelta

import pytest
import torch

from seq2seq import checkpoint, runtime
from seq2seq.checkpoint import load_checkpoint
from seq2seq.training import loop, train
from seq2seq.training.recipe import _start
from seq2seq.training.setup import setup_optimizer
from seq2seq.training.state import Progress
from tests.conftest import TINY, TINY_RNN, compose_config, needs_multi30k


def fake_gpus(monkeypatch, count: int, local_rank: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setenv("LOCAL_RANK", str(local_rank))


@pytest.mark.parametrize("requested", ["auto", "cuda"])
def test_one_gpu_per_task_is_device_0_whatever_the_local_rank(monkeypatch, requested):
    """SLURM --gpus-per-task=1: every task sees its own GPU as device 0; LOCAL_RANK 1 has no
    device 1."""
    fake_gpus(monkeypatch, count=1, local_rank=1)
    assert runtime.pick_device(requested) == torch.device("cuda", 0)


def test_a_gpu_per_local_rank_on_a_multi_gpu_node(monkeypatch):
    fake_gpus(monkeypatch, count=4, local_rank=2)
    assert runtime.pick_device("cuda") == torch.device("cuda", 2)


def test_the_gpu_is_set_before_the_group_starts_with_an_explicit_timeout(monkeypatch):
    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("SEQ2SEQ_DIST_BACKEND", raising=False)
    monkeypatch.delenv("SEQ2SEQ_DIST_TIMEOUT_S", raising=False)
    monkeypatch.setattr(runtime.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(runtime.dist, "get_rank", lambda: 1)
    monkeypatch.setattr(runtime.dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set", device)))
    monkeypatch.setattr(
        runtime.dist, "init_process_group", lambda **kwargs: calls.append(("init", kwargs))
    )
    info = runtime.init_distributed(torch.device("cuda", 1))
    assert calls == [
        ("set", torch.device("cuda", 1)),
        ("init", {"backend": "nccl", "timeout": timedelta(seconds=runtime.DIST_TIMEOUT_S)}),
    ]
    assert (info.rank, info.world_size, info.device) == (1, 2, torch.device("cuda", 1))


def test_each_rank_takes_its_own_generator_states():
    states = [{"torch": torch.tensor([rank])} for rank in range(2)]
    saved = {"torch": torch.tensor([0]), "ranks": states}
    assert checkpoint.rank_rng_state(saved, 1) is states[1]
    assert (
        checkpoint.rank_rng_state(saved, 2) is None
    )  # more ranks than saved: its own seeded stream
    assert (
        checkpoint.rank_rng_state({"torch": torch.tensor([0])}, 0) is not None
    )  # older checkpoints
    assert checkpoint.rank_rng_state({"torch": torch.tensor([0])}, 1) is None


def test_rank_seeds_differ_and_rank_0_keeps_the_seed():
    assert runtime.rank_seed(1234, 0) == 1234
    assert len({runtime.rank_seed(1234, rank) for rank in range(8)}) == 8


def tiny(shared_cache, run_dir, *extra):
    return compose_config(
        *TINY, *TINY_RNN, f"data.cache_dir={shared_cache}", f"run_dir={run_dir}", *extra
    )


@needs_multi30k
def test_resume_reads_last_pt_onto_the_cpu_whatever_the_training_device(shared_cache, tmp_path):
    """last.pt loaded onto the training device put the generator states there, where
    torch.set_rng_state refuses them (on a GPU: the first resume crashed). The meta device
    stands in for the GPU here: nothing can be read back from it."""
    train(tiny(shared_cache, tmp_path, "trainer.max_steps=2", "trainer.val_every=2"))
    parts, lock = _start(tiny(shared_cache, tmp_path, "trainer.max_steps=4", "trainer.resume=true"))
    try:
        parts.runtime.device = torch.device("meta")
        progress = loop.resume(parts, "rnn")
    finally:
        lock.release()
        parts.logger.close()
    assert progress.step == 2
    saved = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["model"]
    for name, tensor in parts.model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name


@needs_multi30k
def test_an_fp16_step_the_scaler_skips_advances_nothing(shared_cache, tmp_path):
    """A step whose gradients overflow is skipped by the GradScaler: it must not count as a
    step (nor advance the lr schedule), and skipped_steps says so."""
    cfg = tiny(shared_cache, tmp_path, "trainer.max_steps=2", "trainer.val_every=100")
    parts, lock = _start(cfg)
    try:
        parts.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
        weight = next(parts.model.parameters())
        overflow = {"left": 1}

        def once_inf(grad):
            if overflow["left"]:
                overflow["left"] -= 1
                return torch.full_like(grad, float("inf"))
            return grad

        weight.register_hook(once_inf)
        progress = Progress()
        loop.fit(
            parts,
            progress,
            trainer_cfg=cfg.trainer,
            optim_cfg=cfg.optim,
            decode=cfg.decode,
            max_tokens=cfg.data.max_tokens,
        )
    finally:
        lock.release()
        parts.logger.close()
    assert (progress.step, progress.skipped_steps) == (2, 1)
    assert parts.scaler.get_scale() == 2.0**9  # lowered once
    steps = {int(s["step"]) for s in parts.optimizer.state_dict()["state"].values()}
    assert steps == {2}  # the optimizer applied two updates
    _, fresh = setup_optimizer(parts.model, cfg.optim)
    fresh.step(3)  # the lr of the 3rd update: two were applied
    assert parts.schedule.lr == fresh.lr


def test_precision_auto_skips_emulated_bf16(monkeypatch):
    """Pre-Ampere GPUs emulate bf16 (torch.cuda.is_bf16_supported() counts that): auto must
    take fp32 there, not a slow emulated bf16."""
    monkeypatch.setattr(
        torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation
    )
    assert runtime.autocast_dtype("auto", torch.device("cuda", 0)) is None


@pytest.fixture
def tf32_flags():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.usefixtures("tf32_flags")
def test_one_tf32_rule_for_matmuls_and_cudnn():
    """fp32 on CUDA is fp32 for matmuls and cuDNN RNNs alike (cuDNN allows TF32 by default,
    matmuls do not); under autocast both may use TF32 (the fp32 recurrence, cheaply)."""
    cuda = torch.device("cuda", 0)
    runtime.set_tf32(cuda, None)
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False,) * 2
    runtime.set_tf32(cuda, torch.bfloat16)
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True,) * 2
    runtime.set_tf32(torch.device("cpu"), None)  # nothing changes off CUDA
    assert torch.backends.cudnn.allow_tf32


@pytest.mark.usefixtures("tf32_flags")
def test_decoding_follows_trainings_tf32_rule():
    from seq2seq.decoding.precision import decoding_autocast

    torch.backends.cudnn.allow_tf32 = True
    assert decoding_autocast("fp32", torch.device("cuda", 0)) is None
    assert not torch.backends.cudnn.allow_tf32


def test_ddp_ranks_share_the_cores(monkeypatch):
    """Each of a node's DDP ranks takes its share of the cores, not all of them."""
    threads = torch.get_num_threads()
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    try:
        assert runtime.set_threads(None) == 4
        monkeypatch.delenv("LOCAL_WORLD_SIZE")
        assert runtime.set_threads(None) == 8
    finally:
        torch.set_num_threads(threads)


def test_ddp_broadcasts_buffers_only_for_models_with_state_in_them(tmp_path):
    """DDP broadcasts buffers every forward by default: the Transformer's constant sinusoidal
    tables need none; hard attention's reward baseline does."""
    import torch.distributed as dist

    from seq2seq.models.transformer import TransformerSeq2Seq
    from seq2seq.runtime import DistInfo
    from seq2seq.training.setup import Runtime, wrap_for_training
    from tests.models.test_rnn import tiny as tiny_rnn

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        fake = Runtime(torch.device("cpu"), None, DistInfo(rank=0, world_size=2), 1)
        transformer = TransformerSeq2Seq(
            src_vocab_size=11, tgt_vocab_size=11, d_model=8, heads=2, ff_size=16,
            encoder_layers=1, decoder_layers=1,
        )  # fmt: skip
        assert not wrap_for_training(transformer, fake, compile=False).broadcast_buffers
        hard = tiny_rnn("hard")
        assert wrap_for_training(hard, fake, compile=False).broadcast_buffers
    finally:
        dist.destroy_process_group()


def test_the_fused_loss_takes_bigger_chunks_on_a_gpu():
    from seq2seq.training.loss import chunk_rows

    assert chunk_rows("cuda", 8000) >= 8 * chunk_rows("cpu", 8000)
