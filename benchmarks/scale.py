"""Scale check: data preparation and training cost on corpora of growing size.

For each corpus (``corpus=LABEL`` and the Hydra overrides after it that select it), each step
in a process of its own, so each peak resident set size (``ru_maxrss`` from ``wait4``) is that
step's alone:

1. ``seq2seq-prepare`` on a cache of its own (cold: Arrow conversion, sentencepiece training,
   tokenization): wall time, peak RSS, training pairs and subwords.
2. ``seq2seq-train`` of a tiny model for ``trainer.max_steps`` steps (default 200) on that (now
   warm) cache: peak RSS and
   the time inside optimizer steps (``metrics.json``: the model's share of a step).
3. The data side of a training step, in the same setting: the startup (``prepare_data`` on the
   warm cache), planning one epoch's batches, and collating a batch from the memory-mapped ids
   (mean over ``trainer.max_steps`` batches).

A step is model + collation; an epoch is its batches x a step, plus the plan. Time per step
should not depend on the corpus size, time per epoch should grow with its tokens: the table
gives seconds per million training tokens to compare. From a source checkout::

    python -m benchmarks.scale corpus=multi30k data=multi30k \\
        corpus=tatoeba data=tatoeba_en_fr \\
        corpus=wmt14-size data=multi30k data.dir=/tmp/big --out scale.json

(``/tmp/big`` from ``python ../shared/tools/bigcorpus.py ../shared/data/multi30k /tmp/big``.)
The overrides before the first ``corpus=`` are given to every step of every corpus, after the
tiny model's (:data:`TINY_TRAINING`, which they may change): ``trainer.max_steps=N``,
``data.cache_dir=DIR`` (one cache for all; default: one per corpus). The flags are the
harness's own: ``--work-dir`` (caches, logs and runs; default a temporary directory) and
``--out`` (the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# a tiny model, one thread, no validation before the end, a short final test
TINY_TRAINING = (
    "model=rnn model.emb_size=64 model.hidden_size=64 trainer.device=cpu trainer.precision=fp32 "
    "trainer.num_threads=1 trainer.max_epochs=null trainer.val_every=1000000000 "
    "trainer.log_every=50 trainer.heatmaps=0 logger=off data.eval_limit=64 decode.beam_size=1"
)
DEFAULT_STEPS = 200  # training steps (and batches timed) unless trainer.max_steps=N
TRAIN_LINE = re.compile(r"^\s*train\s+(\d+) pairs\s+(\d+) src /\s+(\d+) tgt subwords", re.M)


def run_measured(argv: list[str], log: Path) -> tuple[float, float, str]:
    """Run ``argv`` with stdout and stderr to ``log``: (wall seconds, peak RSS in MB, output).
    RuntimeError with the output's tail when it fails."""
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as handle:
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    output = log.read_text(encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} exited {proc.returncode}:\n{output[-2000:]}")
    return wall, usage.ru_maxrss / 1024, output  # Linux: ru_maxrss in KiB


def module(name: str, *args: str) -> list[str]:
    return [sys.executable, "-m", name, *args]


def data_side(overrides: list[str], batches: int) -> dict:
    """The data work of a training process (the ``--data-side`` child): JSON-ready timings."""
    from seq2seq.composition import compose
    from seq2seq.data.batching import BatchPlan
    from seq2seq.data.pipeline import prepare_data

    cfg = compose(overrides)
    start = time.perf_counter()
    train = prepare_data(cfg.data).splits["train"]
    startup = time.perf_counter() - start
    start = time.perf_counter()
    plan = BatchPlan(
        train.src_ids, train.tgt_ids, max_tokens=cfg.data.max_tokens, seed=cfg.trainer.seed
    )
    num_batches = plan.num_batches(0)
    plan_s = time.perf_counter() - start
    start = time.perf_counter()
    collated = sum(1 for _, _ in zip(range(batches), plan.epoch(0), strict=False))
    collate_s = (time.perf_counter() - start) / max(collated, 1)
    return {
        "startup_s": startup,
        "plan_s": plan_s,
        "batches_per_epoch": num_batches,
        "collate_s": collate_s,
    }


def override_value(overrides: list[str], key: str) -> str | None:
    """The value the last ``key=value`` of ``overrides`` gives ``key``, None if none does."""
    values = [o.partition("=")[2] for o in overrides if o.partition("=")[0] == key]
    return values[-1] if values else None


def measure_corpus(label: str, overrides: list[str], args, work: Path) -> dict:
    """Prepare, train and time the data side of one corpus; one row of the table."""
    work.mkdir(parents=True, exist_ok=True)
    own_cache = (
        []
        if override_value(args.overrides, "data.cache_dir")
        else [f"data.cache_dir={work / 'cache'}"]
    )
    common = [*overrides, *own_cache, *args.overrides]
    wall, rss, output = run_measured(module("seq2seq.cli.prepare", *common), work / "prepare.log")
    match = TRAIN_LINE.search(output)
    if match is None:
        raise RuntimeError(f"no training split line in seq2seq-prepare's output:\n{output[-2000:]}")
    pairs, src_tokens, tgt_tokens = map(int, match.groups())
    row = {
        "corpus": label,
        "overrides": overrides,
        "train_pairs": pairs,
        "train_tokens": src_tokens + tgt_tokens,
        "prepare_s": round(wall, 1),
        "prepare_peak_rss_mb": round(rss),
    }
    tiny = [*shlex.split(TINY_TRAINING), f"trainer.max_steps={args.steps}"]
    training = [*overrides, *own_cache, *tiny, *args.overrides]
    run_dir = work / "run"
    _, rss, _ = run_measured(
        module(
            "seq2seq.cli.train", *training, f"hydra.run.dir={run_dir}", "trainer.overwrite=true"
        ),
        work / "train.log",
    )
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    step_s = metrics["train_time_s"] / max(metrics["steps"], 1)
    # this file as a script: the child needs seq2seq, not the checkout's benchmarks package
    child = [sys.executable, str(Path(__file__).resolve()), "--data-side", str(args.steps)]
    _, data_rss, output = run_measured([*child, *training], work / "data.log")
    data = json.loads(output.strip().splitlines()[-1])
    full_step = step_s + data["collate_s"]
    epoch_s = data["batches_per_epoch"] * full_step + data["plan_s"]
    row |= {
        "train_peak_rss_mb": round(rss),
        "steps": metrics["steps"],
        "model_step_ms": round(1000 * step_s, 2),
        "collate_ms": round(1000 * data["collate_s"], 2),
        "steps_per_s": round(1 / full_step, 2),
        "batches_per_epoch": data["batches_per_epoch"],
        "epoch_plan_s": round(data["plan_s"], 2),
        "train_startup_s": round(data["startup_s"], 1),
        "data_side_peak_rss_mb": round(data_rss),
        "epoch_min": round(epoch_s / 60, 2),
        "epoch_s_per_million_tokens": round(epoch_s / (row["train_tokens"] / 1e6), 1),
    }
    return row


COLUMNS = [
    "corpus",
    "train_pairs",
    "train_tokens",
    "prepare_s",
    "prepare_peak_rss_mb",
    "train_peak_rss_mb",
    "steps_per_s",
    "model_step_ms",
    "collate_ms",
    "batches_per_epoch",
    "epoch_plan_s",
    "epoch_min",
    "epoch_s_per_million_tokens",
]


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[c]) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    """``args.overrides`` (shared by every corpus), ``args.corpus`` ({LABEL: its overrides}),
    ``args.steps`` (trainer.max_steps), the flags."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "arguments",
        nargs="*",
        metavar="KEY=VALUE",
        help="shared overrides, then corpus=LABEL and the overrides that select it, per corpus",
    )
    parser.add_argument(
        "--work-dir", help="caches, logs and runs (default: a temporary directory, removed after)"
    )
    parser.add_argument("--out", default="scale.json")
    parser.add_argument("--data-side", type=int, metavar="BATCHES", help=argparse.SUPPRESS)
    args = parser.parse_intermixed_args(argv)
    if args.data_side is not None:  # the child of step 3: the training step's overrides
        args.overrides = args.arguments
        return args
    from benchmarks.groups import group_overrides

    try:
        args.overrides, args.corpus = group_overrides(args.arguments, "corpus")
    except ValueError as err:
        parser.error(str(err))
    if not args.corpus:
        parser.error("give at least one corpus=LABEL, then the overrides that select it")
    steps = override_value(args.overrides, "trainer.max_steps")
    try:
        args.steps = DEFAULT_STEPS if steps is None else int(steps)
    except ValueError:
        parser.error(f"trainer.max_steps={steps}: not a whole number")
    return args


def main(argv: list[str] | None = None) -> dict | None:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.data_side is not None:  # the child of step 3
        print(json.dumps(data_side(args.overrides, args.data_side)))
        return None
    with tempfile.TemporaryDirectory(prefix="seq2seq-scale-") as tmp:
        work = Path(args.work_dir or tmp)
        rows = []
        for label, overrides in args.corpus.items():
            rows.append(measure_corpus(label, overrides, args, work / label))
            print(json.dumps(rows[-1]), flush=True)
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "steps": args.steps,
        "training": TINY_TRAINING,
        "overrides": args.overrides,
        "corpora": rows,
    }
    print(table(rows))
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
