#!/usr/bin/env bash
# The GPU check: one call, at most 8 minutes on one GPU node WITHOUT network access (only the
# checkout arrives). It assumes a recent torch with CUDA, sacrebleu, sentencepiece, tensorboard,
# pyarrow, numpy, matplotlib and tqdm; hydra-core, omegaconf, datasets and pytest come from the
# wheels that `make gpu-wheels` put in build/gpu-check/wheels (Python 3.12, manylinux), the
# corpus from its copy in build/gpu-check/data (both ignored by git; carry them with the
# checkout). No project venv, no install into the system: a target directory in /tmp.
#
#   make gpu-wheels                      # where there is network, once
#   bash scripts/gpu_check.sh OUT        # on the GPU node, from the repository root
#
# Sections, each under its own time limit: environment, dependencies, the CUDA tests,
# 60-second bf16 trainings of the default RNN and Transformer (tokens/s; beam-5 sentences/s on
# the test split), resume, a 2-process DDP run stopped by trainer.max_time (NCCL over 2 GPUs,
# else gloo with both ranks on one GPU), host syncs per training and beam step, and the cuDNN
# RNN's dtype under bf16 autocast. Without a GPU every GPU section says "skipped" and why.
# Run directories stay in /tmp; OUT gets the logs and summary.txt (8 files at most). The
# whole check stops within GPU_CHECK_BUDGET seconds (460), each section within its own limit.
# Exit status: 0 when every section that ran passed (or, without a GPU, was skipped), 1 if not.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=$(mkdir -p "${1:-gpu_check_out}" && cd "${1:-gpu_check_out}" && pwd)
rm -f "$OUT"/*.log "$OUT"/summary.txt
GPU_CHECK_DIR=${GPU_CHECK_DIR:-$ROOT/build/gpu-check}
WORK=$(mktemp -d /tmp/gpu_check.XXXXXX)
SUMMARY=$OUT/summary.txt
FAILED=0
START=$SECONDS

say() { echo "$*" | tee -a "$SUMMARY"; }
section() { say ""; say "== $1 ($(date -u +%H:%M:%S) UTC, +$((SECONDS - START)) s)"; }
fail() { say "FAILED: $*"; FAILED=1; }
# the whole check stays within BUDGET seconds (8 minutes, less a margin for the last words)
BUDGET=${GPU_CHECK_BUDGET:-460}
# run LIMIT LOG CMD...: the command under a time limit (cut to what is left of BUDGET), its
# output appended to LOG
run() {
  local limit=$1 log=$2 left=$((BUDGET - (SECONDS - START)))
  shift 2
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 5 ]; then
    say "  (not run: the check's $BUDGET s are spent)"
    return 124
  fi
  timeout --kill-after=5 "$limit" "$@" >>"$log" 2>&1
  local code=$?
  [ $code -eq 124 ] || [ $code -eq 137 ] && say "  (stopped at its limit of $limit s)"
  return $code
}

# A python with torch: $PY, else python3, else the project's venv (a CPU dry run here).
if [ -z "${PY:-}" ]; then
  PY=python3
  if ! python3 -c "import torch" 2>/dev/null && [ -x "$ROOT/.venv/bin/python" ]; then
    PY=$ROOT/.venv/bin/python
  fi
fi

section "environment"
"$PY" - <<'PY' 2>&1 | tee -a "$SUMMARY" "$OUT/env.log"
import platform, sys
import torch
print(f"torch {torch.__version__}, torch.cuda.is_available() = {torch.cuda.is_available()}")
print(f"python {platform.python_version()} ({sys.executable}), CUDA {torch.version.cuda}")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"GPU {i}: {p.name}, {p.total_memory / 2**30:.0f} GiB, compute {p.major}.{p.minor}, "
          f"native bf16 {torch.cuda.is_bf16_supported(including_emulation=False)}")
PY
GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)" 2>/dev/null || echo 0)
NO_GPU="skipped: no CUDA GPU (torch.cuda.is_available() is False)"
# the training sections run where RUNS > 0: on the GPUs; GPU_CHECK_ON_CPU=1 runs them on the
# CPU instead (fp32, 15-second trainings): a rehearsal of this script, not a GPU figure
RUNS=$GPUS DEVICE=cuda PRECISION=bf16 TRAIN_TIME=60 SMALL=()
if [ "$GPUS" = 0 ] && [ "${GPU_CHECK_ON_CPU:-0}" = 1 ]; then
  RUNS=1 DEVICE=cpu PRECISION=fp32 TRAIN_TIME=15
  SMALL=(data.max_tokens=512 data.eval_limit=40 trainer.num_threads=1) # a CPU's share
  NO_GPU="skipped: no CUDA GPU (GPU_CHECK_ON_CPU=1 rehearses the training sections on the CPU)"
  say "  GPU_CHECK_ON_CPU=1: the training sections run on the CPU in fp32 (no GPU figures)"
fi

section "dependencies"
# hydra-core, omegaconf, datasets, pytest and what they need, from the wheels: only what this
# python lacks, into $WORK/site (first on PYTHONPATH); the checkout itself is the package
export PYTHONPATH="$WORK/site:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
run 120 "$OUT/env.log" "$PY" - "$GPU_CHECK_DIR/wheels" "$WORK/site" <<'PY'
import importlib.metadata as md, subprocess, sys, zipfile
from pathlib import Path
wheels, site = Path(sys.argv[1]), Path(sys.argv[2])
site.mkdir(parents=True, exist_ok=True)
missing = []
for wheel in sorted(wheels.glob("*.whl")):
    name = wheel.name.split("-")[0]
    try:
        md.version(name)
    except md.PackageNotFoundError:
        missing.append(wheel)
print(f"{len(missing)} of {len(list(wheels.glob('*.whl')))} wheels in {wheels} to install:",
      " ".join(w.name.split("-")[0] for w in missing) or "none")
if missing:
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
           "--target", str(site), *map(str, missing)]
    if subprocess.run(pip).returncode != 0:  # no pip: a wheel is a zip of the install
        for wheel in missing:
            zipfile.ZipFile(wheel).extractall(site)
PY
DEPS=$("$PY" - <<'PY' 2>&1
import importlib
bad = []
for name in ("hydra", "omegaconf", "datasets", "pytest", "sacrebleu", "sentencepiece",
             "tensorboard", "pyarrow", "matplotlib", "tqdm", "numpy", "seq2seq.training"):
    try:
        importlib.import_module(name)
    except Exception as err:  # noqa: BLE001
        bad.append(f"{name} ({type(err).__name__}: {err})")
print("missing: " + "; ".join(bad) if bad else "ok")
PY
)
say "  imports: $DEPS"
[ "$DEPS" = "ok" ] || fail "dependencies (make gpu-wheels where there is network; carry build/gpu-check)"

# the corpus: the copy carried in the checkout, else SEQ2SEQ_DATA, else ../shared/data
if [ -d "$GPU_CHECK_DIR/data/multi30k" ]; then
  export SEQ2SEQ_DATA=$GPU_CHECK_DIR/data
else
  export SEQ2SEQ_DATA=${SEQ2SEQ_DATA:-$ROOT/../shared/data}
fi
say "  corpus: $SEQ2SEQ_DATA/multi30k $([ -d "$SEQ2SEQ_DATA/multi30k" ] && echo found || echo MISSING)"
CACHE="data.cache_dir=$WORK/cache"
TRAIN=("$PY" -m seq2seq.cli.train)

section "CUDA tests (tests/test_cuda.py)"
if [ "$GPUS" -gt 0 ]; then
  run 170 "$OUT/cuda_tests.log" "$PY" -m pytest -q -p no:cacheprovider -m cuda -rs tests/test_cuda.py
  TALLY=$(tail -n 1 "$OUT/cuda_tests.log")
  say "  $TALLY"
  grep -E "^SKIPPED" "$OUT/cuda_tests.log" | sed 's/^/  /' | tee -a "$SUMMARY"
  echo "$TALLY" | grep -q " passed" || fail "CUDA tests: none passed"
  echo "$TALLY" | grep -qE "failed|error" && fail "CUDA tests"
elif [ "$RUNS" -gt 0 ]; then # the CPU rehearsal: that they are collected
  run 60 "$OUT/cuda_tests.log" "$PY" -m pytest -q -p no:cacheprovider -m cuda --collect-only tests/test_cuda.py
  say "  $NO_GPU; $(tail -n 1 "$OUT/cuda_tests.log")"
else
  say "  $NO_GPU"
fi

# summarize RUN_DIR LABEL: tokens/s, steps, BLEU and beam-5 sentences/s from metrics.json
summarize() {
  "$PY" - "$1" "$2" <<'PY' | tee -a "$SUMMARY"
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
m = json.loads((run / "metrics.json").read_text())
sentences = sum(1 for _ in open(run / "hyps" / "test.txt", encoding="utf-8"))
print(f"  {sys.argv[2]}: {m['train_tokens_per_sec']:,.0f} train tokens/s over {m['steps']} steps "
      f"({m['precision']} on {m['device']}, stopped by {m['stopped_by']}); test BLEU "
      f"{m['test_bleu']:.2f}; beam 5: {sentences / m['test_decode_s']:,.0f} sentences/s "
      f"({sentences} in {m['test_decode_s']:.1f} s)")
PY
}

for MODEL in rnn transformer; do
  section "$TRAIN_TIME-second $PRECISION training: default $MODEL"
  if [ "$RUNS" -gt 0 ]; then
    RUN=$WORK/train_$MODEL
    if run 170 "$OUT/train_$MODEL.log" "${TRAIN[@]}" "model=$MODEL" "trainer.device=$DEVICE" \
        "trainer.precision=$PRECISION" "trainer.max_time=$TRAIN_TIME" trainer.val_every=100000 \
        "$CACHE" ${SMALL[@]+"${SMALL[@]}"} "hydra.run.dir=$RUN"; then
      summarize "$RUN" "$MODEL" || fail "$MODEL: no metrics"
    else
      fail "$MODEL training (see train_$MODEL.log)"
    fi
  else
    say "  $NO_GPU"
  fi
done

TINY=("trainer.device=$DEVICE" "trainer.precision=$PRECISION" data.train_limit=2000 data.eval_limit=64
  data.vocab.size=1000 trainer.max_epochs=null trainer.log_every=10 decode.beam_size=2 "$CACHE"
  ${SMALL[@]+"${SMALL[@]}"})

section "resume (trainer.resume=true onto the GPU)"
if [ "$RUNS" -gt 0 ]; then
  RUN=$WORK/resume
  if run 60 "$OUT/resume.log" "${TRAIN[@]}" "${TINY[@]}" trainer.max_steps=20 trainer.val_every=10 \
      "hydra.run.dir=$RUN" &&
    run 60 "$OUT/resume.log" "${TRAIN[@]}" "${TINY[@]}" trainer.max_steps=30 trainer.val_every=10 \
      trainer.resume=true "hydra.run.dir=$RUN"; then
    STEPS=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['steps'])" "$RUN/metrics.json")
    grep -q "resumed from" "$OUT/resume.log" && [ "$STEPS" = 30 ] &&
      say "  resumed at step 20, finished at step $STEPS" || fail "resume: steps $STEPS"
  else
    fail "resume (see resume.log)"
  fi
else
  say "  $NO_GPU"
fi

section "DDP: 2 processes, stopped by trainer.max_time=20"
if [ "$RUNS" -gt 0 ]; then
  RUN=$WORK/ddp
  if [ "$GPUS" -ge 2 ]; then
    BACKEND=nccl
  else
    BACKEND=gloo # both ranks on the one GPU (NCCL refuses two ranks on one device)
  fi
  if SEQ2SEQ_DIST_BACKEND=$BACKEND SEQ2SEQ_DIST_TIMEOUT_S=120 run 150 "$OUT/ddp.log" \
      "$PY" -m torch.distributed.run --standalone --nproc_per_node=2 -m seq2seq.cli.train \
      "${TINY[@]}" trainer.max_steps=100000 trainer.max_time=20 trainer.val_every=50 \
      "hydra.run.dir=$RUN"; then
    "$PY" - "$RUN/metrics.json" "$BACKEND" <<'PY' | tee -a "$SUMMARY"
import json, sys
m = json.load(open(sys.argv[1]))
print(f"  {sys.argv[2]}: {m['steps']} steps, stopped by {m['stopped_by']}, "
      f"{m['train_tokens_per_sec']:,.0f} tokens/s over both ranks")
PY
  else
    fail "DDP (see ddp.log)"
  fi
else
  say "  $NO_GPU"
fi

section "host syncs per step, cuDNN RNN dtype under bf16 autocast"
if [ "$RUNS" -gt 0 ]; then
  REHEARSE=()
  [ "$GPUS" = 0 ] && REHEARSE=(--rehearse)
  run 120 "$OUT/probes.log" "$PY" scripts/gpu_probe.py ${REHEARSE[@]+"${REHEARSE[@]}"} "$CACHE" ${SMALL[@]+"${SMALL[@]}"} ||
    fail "probes (see probes.log)"
  grep -E "host syncs|cuDNN|rehearsal" "$OUT/probes.log" | sed 's/^/  /' | tee -a "$SUMMARY"
else
  say "  $NO_GPU"
fi

section "end"
say "  $([ "$FAILED" = 0 ] && echo "every section passed or was skipped" || echo "some sections FAILED") in $((SECONDS - START)) s; logs in $OUT"
rm -rf "$WORK"
exit "$FAILED"
