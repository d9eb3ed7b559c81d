#!/usr/bin/env bash
# Install the peer NMT toolkits used by the speed benchmark (harness: benchmarks/peers, one module
# per peer; a venv is named after its module) into isolated venvs:
#   BUILD_DIR/joeynmt-venv  (Joey NMT 2.3.0)
#   BUILD_DIR/opennmt-venv  (OpenNMT-py 3.5.1)
# Both get torch==2.13.0 (the CPU wheel on this machine) FIRST, then the toolkit with
# --no-deps (OpenNMT-py pins torch<2.3; Joey drags in linters, datasets, pandas, plotly...)
# and, by hand, only the packages that onmt_train/onmt_translate and joeynmt train/test
# import at run time. Idempotent: a venv whose stamp file matches is left alone.
# Never touches the project's own .venv.
set -euo pipefail

BUILD_DIR="${1:-build/peers}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="torch==2.13.0"
mkdir -p "$BUILD_DIR"
BUILD_DIR="$(cd "$BUILD_DIR" && pwd)"

# Stamp content: bump when the package lists below change.
JOEY_PKGS=(
  "joeynmt==2.3.0"
)
JOEY_DEPS=(
  "sentencepiece==0.2.0" "importlib_metadata" "numpy" "pyyaml>=5.1" "packaging"
  "tensorboard" "sacrebleu>=2.0.0" "subword-nmt" "sacremoses" "tqdm" "matplotlib"
  "six" "wrapt" "future" "pillow"
)
ONMT_PKGS=(
  "OpenNMT-py==3.5.1"
)
ONMT_DEPS=(
  "configargparse" "pyyaml" "sentencepiece" "subword-nmt" "pyonmttok>=1.37,<2"
  "sacrebleu" "tensorboard" "numpy" "six" "rapidfuzz" "pyahocorasick" "regex"
  "safetensors" "spacy" "fasttext-wheel"
)

make_venv() {  # name, stamp text, pkgs-array-name, deps-array-name
  local name="$1" stamp="$2"
  local -n pkgs="$3" deps="$4"
  local venv="$BUILD_DIR/$name"
  local stamp_file="$venv/.peer-installed"
  if [[ -f "$stamp_file" ]] && [[ "$(cat "$stamp_file")" == "$stamp" ]]; then
    echo "[install_peers] $name: up to date ($venv)"
    return 0
  fi
  echo "[install_peers] $name: creating $venv"
  [[ -x "$venv/bin/python" ]] || "$PYTHON" -m venv "$venv"
  local pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
  "${pip[@]}" install --upgrade pip wheel "setuptools<81"
  # torch FIRST, exact CPU build; a bare "torch" would fetch a multi-GB CUDA wheel.
  "${pip[@]}" install "$TORCH_SPEC"
  "${pip[@]}" install --no-deps "${pkgs[@]}"
  "${pip[@]}" install "$TORCH_SPEC" "${deps[@]}"
  "$venv/bin/python" -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
  echo "$stamp" > "$stamp_file"
  echo "[install_peers] $name: done"
}

JOEY_STAMP="v1 ${JOEY_PKGS[*]} ${JOEY_DEPS[*]} $TORCH_SPEC"
ONMT_STAMP="v1 ${ONMT_PKGS[*]} ${ONMT_DEPS[*]} $TORCH_SPEC"
make_venv joeynmt-venv "$JOEY_STAMP" JOEY_PKGS JOEY_DEPS
make_venv opennmt-venv "$ONMT_STAMP" ONMT_PKGS ONMT_DEPS

# Smoke checks: the entry points import under torch 2.13.
"$BUILD_DIR/joeynmt-venv/bin/python" -c "import joeynmt.training, joeynmt.prediction, torch; print('[install_peers] joeynmt 2.3.0 ok, torch', torch.__version__)"
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 "$BUILD_DIR/opennmt-venv/bin/python" -W ignore -c "import onmt, onmt.bin.train, onmt.bin.translate, torch; print('[install_peers] OpenNMT-py', onmt.__version__, 'ok, torch', torch.__version__)"
