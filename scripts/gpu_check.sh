#!/usr/bin/env bash
# One short GPU check: the CUDA tests, a 3-minute training with bf16 autocast, and a DDP run over
# every visible GPU; prints tokens/s of each. Run from the repository root after
#   make install TORCH_SPEC='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128'
#   bash scripts/gpu_check.sh [OUT_DIR]        (about 8 minutes on one GPU)
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${1:-gpu_check}
mkdir -p "$OUT"
export SEQ2SEQ_DATA=${SEQ2SEQ_DATA:-$(cd .. && pwd)/shared/data}
"$PY" - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA GPU visible to torch"
for i in range(torch.cuda.device_count()):
    print(f"GPU {i}: {torch.cuda.get_device_name(i)}, bf16: {torch.cuda.is_bf16_supported()}")
print("torch", torch.__version__, "CUDA", torch.version.cuda)
PY
echo "== CUDA tests"
"$PY" -m pytest -q -m cuda tests/test_cuda.py

echo "== 3-minute training, bf16 autocast"
"$PY" -m seq2seq.cli.train trainer.device=cuda trainer.precision=bf16 trainer.max_time=180 \
  trainer.val_every=200 "hydra.run.dir=$OUT/bf16"

GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())")
echo "== DDP over $GPUS GPU(s), 3 minutes"
"$PY" -m torch.distributed.run --nproc_per_node="$GPUS" -m seq2seq.cli.train trainer.device=cuda \
  trainer.precision=bf16 trainer.max_time=180 trainer.val_every=200 "hydra.run.dir=$OUT/ddp"

"$PY" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
for name in ("bf16", "ddp"):
    m = json.loads((Path(sys.argv[1]) / name / "metrics.json").read_text())
    print(f"{name}: {m['train_tokens_per_sec']:.0f} tokens/s, {m['steps']} steps, "
          f"test BLEU {m['test_bleu']:.2f} ({m['precision']} on {m['device']})")
PY
