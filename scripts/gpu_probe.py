"""Measurements of scripts/gpu_check.sh that need a CUDA GPU, printed one per line:

- host syncs per training step (bf16, the default RNN and the Transformer) and per beam-5
  decoding step, counted with ``torch.cuda.set_sync_debug_mode``;
- the dtype a cuDNN GRU returns under bf16 autocast, torch's own and the project's encoder's
  (autocast's cuDNN RNN wrapper casts to fp16 whatever the autocast dtype).

    python scripts/gpu_probe.py [OVERRIDES]   # from the repository root, e.g. data.cache_dir=D

Without CUDA it prints one ``skipped:`` line and exits 0; ``--rehearse`` then runs the same
code on the CPU (fp32, nothing counted), so that a GPU's minutes go to the figures alone.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

TRAIN_STEPS, LENGTH = 5, 20


def count_syncs(fn) -> int:
    """Host syncs while ``fn()`` runs (what set_sync_debug_mode("warn") warns about)."""
    if not torch.cuda.is_available():  # a rehearsal on the CPU: run it, count nothing
        fn()
        return 0
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
            torch.cuda.set_sync_debug_mode("default")
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def parts_for(overrides: list[str], run_dir: str, device: torch.device):
    from omegaconf import open_dict

    from seq2seq.composition import compose
    from seq2seq.data.pipeline import prepare_data
    from seq2seq.runtime import DistInfo
    from seq2seq.training.setup import Runtime, setup_parts

    amp = torch.bfloat16 if device.type == "cuda" else None
    precision = "bf16" if amp else "fp32"
    cfg = compose([f"trainer.device={device.type}", f"trainer.precision={precision}", *overrides])
    with open_dict(cfg):
        cfg.run_dir = run_dir
        cfg.logger.name = "off"
    data = prepare_data(cfg.data)
    runtime = Runtime(device, amp, DistInfo(), 1)
    return cfg, data, setup_parts(cfg, runtime, data)


def syncs(name: str, overrides: list[str], device: torch.device) -> None:
    from seq2seq.bench.speed import FixedLength
    from seq2seq.decoding import translate_batches
    from seq2seq.runtime import autocast
    from seq2seq.training import loop

    with tempfile.TemporaryDirectory(prefix="gpu-probe-") as run_dir:
        cfg, data, parts = parts_for(overrides, run_dir, device)
        options = {"label_smoothing": cfg.trainer.label_smoothing, "clip_grad_norm": 1.0}
        batches = parts.plan.epoch(0)
        for _ in range(3):
            loop.train_step(parts, [next(batches)], **options)
        timed = [next(batches) for _ in range(TRAIN_STEPS)]

        def train() -> None:
            for batch in timed:
                loop.train_step(parts, [batch], **options)

        per_step = count_syncs(train) / TRAIN_STEPS
        src = data.splits["test"].src_ids[:64]
        model = FixedLength(parts.model, LENGTH).eval()

        def decode() -> None:
            with autocast(device, parts.runtime.amp_dtype):
                translate_batches(
                    model, src, beam_size=5, batch_size=64, max_len_ratio=0.0,
                    max_len_offset=LENGTH, device=device,
                )  # fmt: skip

        decode()  # warm-up
        per_beam_step = count_syncs(decode) / LENGTH
        parts.logger.close()
    print(
        f"{name}: host syncs per training step {per_step:.1f}, per beam-5 step {per_beam_step:.1f}"
    )


def rnn_dtype() -> None:
    from seq2seq.models.rnn import Encoder

    x = torch.randn(8, 12, 32, device="cuda")
    gru = torch.nn.GRU(32, 32, batch_first=True).cuda()
    encoder = Encoder(
        vocab_size=50, emb_size=32, hidden_size=32, num_layers=1, cell="gru",
        bidirectional=True, dropout=0.0, pad_id=0,
    ).cuda()  # fmt: skip
    ids = torch.randint(1, 50, (8, 12), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        raw = gru(x)[0].dtype
        ours = encoder(ids, torch.full((8,), 12, device="cuda"))[0].dtype
    print(f"cuDNN GRU under bf16 autocast: torch's nn.GRU returns {raw}, the encoder {ours}")


def main(args: list[str]) -> int:
    rehearse = "--rehearse" in args
    overrides = [a for a in args if a != "--rehearse"]
    if torch.cuda.is_available():
        device = torch.device("cuda", 0)
        rnn_dtype()
    elif rehearse:
        device = torch.device("cpu")
        print("rehearsal on the CPU: nothing is counted")
    else:
        print(f"skipped: no CUDA GPU (torch {torch.__version__})")
        return 0
    syncs("rnn", overrides, device)
    syncs("transformer", ["model=transformer", *overrides], device)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
