"""On a CUDA GPU (skipped without one; scripts/gpu_check.sh runs them): training with bf16 and
fp16 autocast, decoding on the GPU matching the CPU's, DDP over the GPUs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from seq2seq.training import train
from tests.conftest import TINY_RNN, compose_config, needs_multi30k, tiny_overrides

pytestmark = [
    pytest.mark.cuda,
    needs_multi30k,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"),
]


def on_cuda(shared_cache, run_dir, precision: str):
    base = [
        o
        for o in tiny_overrides(shared_cache, f"run_dir={run_dir}")
        if not o.startswith(("trainer.device=", "trainer.precision="))
    ]
    return compose_config(*base, "trainer.device=cuda", f"trainer.precision={precision}")


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_on_the_gpu(shared_cache, tmp_path, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    metrics = train(on_cuda(shared_cache, tmp_path, precision))
    assert metrics["status"] == "finished" and metrics["device"].startswith("cuda")
    assert metrics["precision"] == precision and metrics["steps"] == 4
    # fp16: the GradScaler's first steps may overflow (skipped, counted, not steps)
    assert metrics["skipped_steps"] <= (8 if precision == "fp16" else 0)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_recurrent_layers_run_in_fp32_under_bf16_autocast(cell):
    """Autocast's cuDNN RNN wrapper casts to fp16 whatever the autocast dtype: under bf16 (no
    gradient scaler) the encoder's small gradients would flush to zero. They run in fp32."""
    from tests.models.test_rnn import batch, tiny

    model = tiny("additive", cell=cell, wiring="luong-nofeed").cuda().train()
    src, src_mask, tgt_in, tgt_mask = (t.cuda() for t in batch())
    with torch.autocast("cuda", dtype=torch.bfloat16):
        outputs, _ = model.encoder(src, src_mask.sum(1))
        recurrent = model.decoder.core.sequence(
            model.tgt_embedding(tgt_in), model.encode(src, src_mask).recurrent
        )
        logits = model(src, src_mask, tgt_in, tgt_mask).logits
    assert outputs.dtype == torch.float32 and recurrent.dtype == torch.float32
    (logits.float().mean() * 1e-6).backward()
    grad = model.encoder.rnn.weight_hh_l0.grad
    assert grad is not None and grad.dtype == torch.float32 and grad.abs().sum() > 0


def test_gpu_decoding_matches_the_cpu(shared_cache, tmp_path):
    from seq2seq.api import load

    train(on_cuda(shared_cache, tmp_path, "fp32"))
    texts = ["Ein Hund läuft im Schnee.", "Zwei Männer sitzen auf einer Bank."]
    gpu = load(tmp_path, device="cuda").translate(texts, beam_size=4)
    cpu = load(tmp_path, device="cpu").translate(texts, beam_size=4)
    assert [h.text for h in gpu] == [h.text for h in cpu]
    assert [h.score for h in gpu] == pytest.approx([h.score for h in cpu], abs=1e-3)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="DDP needs 2 GPUs")
def test_ddp_over_two_gpus(shared_cache, tmp_path):
    args = [
        a for a in tiny_overrides(shared_cache, *TINY_RNN) if not a.startswith("trainer.device=")
    ]
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m",
         "seq2seq.cli.train", *args, "trainer.device=cuda", f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, timeout=900, env=os.environ | {"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "finished"
