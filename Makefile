# seq2seq: `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# GPU users: make install TORCH_SPEC='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128'
TORCH_SPEC ?= torch==2.13.0
# Local raw copy of Multi30k (no network here); users with network may leave it unset.
SEQ2SEQ_DATA ?= $(abspath ../shared/data)
export SEQ2SEQ_DATA
ARGS ?=
# pytest-xdist processes for make test (one per core here; 0 runs in this process)
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: help install data train evaluate sweep compare compare-converged tensorboard bench bench-peers fault-drill gpu-wheels test test-shuffled test-fast lint clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create .venv: torch (TORCH_SPEC, default torch==2.13.0 CPU), then the package editable with dev tools

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

data: install ## load the corpus, train sentencepiece, cache the tokenized data (ARGS= Hydra overrides)
	$(VENV)/bin/seq2seq-prepare $(ARGS)

train: install ## train the default model (RNN + additive attention, Multi30k de-en); ARGS='model=transformer ...'
	$(VENV)/bin/seq2seq-train $(ARGS)

evaluate: install ## evaluate a run: make evaluate RUN=outputs/... [ARGS='decode.beam_size=10']
	$(VENV)/bin/seq2seq-evaluate run_dir=$(RUN) $(ARGS)

sweep: install ## a Hydra multirun: make sweep ARGS='attention=none,additive,multiplicative,local'
	$(VENV)/bin/seq2seq-train -m $(ARGS)

COMPARE_DIR ?= multirun/compare
compare: install ## every RNN score under one wiring + the Transformer, 3 seeds each, + their AER on the reversal corpus (~3 h on 2 cores; run again to resume), report + summaries in docs/comparison
	-$(VENV)/bin/seq2seq-train experiment=compare_scores hydra.sweep.dir=$(COMPARE_DIR)/scores $(ARGS)
	-$(VENV)/bin/seq2seq-train experiment=compare_transformer hydra.sweep.dir=$(COMPARE_DIR)/transformer $(ARGS)
	test -f data/reverse/test.align || $(PY) -m seq2seq.data.synthetic --out data/reverse
	-$(VENV)/bin/seq2seq-train experiment=compare_scores_reversal hydra.sweep.dir=$(COMPARE_DIR)/reversal $(ARGS)
	$(VENV)/bin/seq2seq-compare $(COMPARE_DIR)/scores $(COMPARE_DIR)/transformer --export docs/comparison/runs
	$(VENV)/bin/seq2seq-compare $(COMPARE_DIR)/reversal --export docs/comparison/reversal
	$(VENV)/bin/seq2seq-compare docs/comparison/runs --aer-runs docs/comparison/reversal --out docs/comparison

CONVERGED_DIR ?= multirun/converged
CONVERGED_EXPORT ?= docs/comparison/converged
JOBS ?= 2
# the lr checks' variants (the best and the worst attention of the grid's seed 1), e.g. content,dot
LR_VARIANTS ?=
CONVERGED_SWEEP = hydra/launcher=joblib hydra.launcher.n_jobs=$(JOBS) trainer.num_threads=1 exported_runs=$(abspath $(CONVERGED_EXPORT))
compare-converged: install ## the comparison at convergence (README): 10 RNN scores + the Transformer, 3 seeds each (+ the lr checks with LR_VARIANTS=a,b); $(JOBS) jobs x 1 thread; each finished run's summary goes to docs/comparison/converged (commit it), jobs whose summary is there are skipped; then the report
	-$(VENV)/bin/seq2seq-train experiment=compare_converged $(CONVERGED_SWEEP) hydra.sweep.dir=$(CONVERGED_DIR)/rnn $(ARGS)
	-$(VENV)/bin/seq2seq-train experiment=compare_converged_transformer $(CONVERGED_SWEEP) hydra.sweep.dir=$(CONVERGED_DIR)/transformer $(ARGS)
	$(if $(LR_VARIANTS),-$(VENV)/bin/seq2seq-train experiment=compare_converged_lr variant=$(LR_VARIANTS) $(CONVERGED_SWEEP) hydra.sweep.dir=$(CONVERGED_DIR)/lr $(ARGS),@echo "lr checks skipped: set LR_VARIANTS=<best>,<worst> (the grid's best and worst attention by name, e.g. content,dot)")
	$(VENV)/bin/seq2seq-compare $(CONVERGED_EXPORT) --out docs/comparison/converged-report --html

PEERS_INSTALLED := $(and $(wildcard build/peers/opennmt-venv/.peer-installed),$(wildcard build/peers/joeynmt-venv/.peer-installed))

bench: install ## speed benchmark (ours; with the peers of benchmarks/peers if `make bench-peers` ran): table + benchmark.json
	$(VENV)/bin/seq2seq-benchmark $(if $(PEERS_INSTALLED),peers=true) $(ARGS)

bench-peers: ## install Joey NMT 2.3.0 + OpenNMT-py 3.5.1 into build/peers/*-venv for the speed benchmark
	bash scripts/install_peers.sh build/peers

fault-drill: install ## hit a tiny training run with 24 faults (SIGTERM/SIGKILL/SIGINT in training, checkpoint writes, validation, start-up, the first data preparation, evaluate and the final test; a full disk; a 2nd writer), resume, check nothing is lost (ARGS='--faults N', '--kinds K1,K2')
	$(PY) scripts/fault_drill.py $(ARGS)

# what scripts/gpu_check.sh needs on a GPU node without network: wheels of the packages a
# recent torch install lacks (Python 3.12, manylinux; numpy and pyarrow are left out, the node
# has them) at the versions of .venv, and a copy of Multi30k; both ignored by git, carried with
# the checkout (about 26 MiB)
GPU_CHECK_DIR ?= build/gpu-check
GPU_PYTHON ?= 3.12
GPU_WHEEL_PLATFORM := --only-binary=:all: --python-version $(GPU_PYTHON) --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64
gpu-wheels: install ## wheels (Python 3.12 manylinux: hydra-core, omegaconf, datasets, pytest + deps) and a Multi30k copy into build/gpu-check, for scripts/gpu_check.sh on an offline GPU node
	rm -rf $(GPU_CHECK_DIR)/wheels $(GPU_CHECK_DIR)/data && mkdir -p $(GPU_CHECK_DIR)/wheels $(GPU_CHECK_DIR)/data
	$(PY) -m pip freeze --exclude-editable | grep -iE '^(hydra-core|omegaconf|datasets|pytest)==' > $(GPU_CHECK_DIR)/pins.txt
	# antlr4-python3-runtime 4.9.3 (omegaconf's) is an sdist only: its pure-Python wheel is built here
	$(PY) -m pip wheel -q --no-deps -w $(GPU_CHECK_DIR)/wheels antlr4-python3-runtime==4.9.3
	$(PY) -m pip download -q $(GPU_WHEEL_PLATFORM) --find-links $(GPU_CHECK_DIR)/wheels \
	  -d $(GPU_CHECK_DIR)/wheels -r $(GPU_CHECK_DIR)/pins.txt
	rm -f $(GPU_CHECK_DIR)/wheels/numpy-*.whl $(GPU_CHECK_DIR)/wheels/pyarrow-*.whl
	cp -r $(SEQ2SEQ_DATA)/multi30k $(GPU_CHECK_DIR)/data/
	du -sh $(GPU_CHECK_DIR)/wheels $(GPU_CHECK_DIR)/data

tensorboard: install ## TensorBoard over runs in outputs/ and sweeps in multirun/
	$(VENV)/bin/tensorboard --logdir_spec runs:outputs,sweeps:multirun

test: install ## run the test suite (fast tests and slow ones), in $(TEST_WORKERS) processes
	$(PY) -m pytest -q -n $(TEST_WORKERS) --durations=25

test-shuffled: install ## the whole suite in a random order (SEED=N repeats one order)
	$(PY) -m pytest -q -p no:cacheprovider --random-order-bucket=global $(if $(SEED),--random-order-seed=$(SEED))

test-fast: install ## run only the fast tests
	$(PY) -m pytest -q -m "not slow"

lint: install ## ruff check and format check
	$(VENV)/bin/ruff check seq2seq benchmarks scripts tests
	$(VENV)/bin/ruff format --check seq2seq benchmarks scripts tests

clean: ## remove caches, build files and outputs (keeps .venv)
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache outputs multirun data/cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
