"""What a converged comparison run costs, lever by lever (README "What a converged comparison
costs").

Two parts, both on the settings of ``experiment=compare_converged``:

``speed``: seconds per update of each lever's configuration, in ONE process, the levers
alternating over ``--rounds`` rounds (the median per lever), so the ratios come from the same
machine in the same minutes. Each update is the training loop's own step
(:func:`seq2seq.bench.speed.measure_training`), on the lever's own data (its vocabulary).
``lever=NAME`` opens a lever; the Hydra overrides (``key=value``) after it are its own:

    python -m benchmarks.convergence_cost speed lever=base \\
        lever=vocab4000 data.vocab.size=4000 lever=batch8k data.max_tokens=8192 \\
        --out docs/convergence/speed.json

``runs``: the converged runs of each lever (one run directory each, e.g. from
``seq2seq-train experiment=compare_converged variant=additive hydra.mode=RUN <lever overrides>``):
updates and epochs to the stop, why it stopped, training and validation minutes (one thread:
core-minutes), test BLEU; with ``--speed`` also the core-minutes the speed figures predict:

    python -m benchmarks.convergence_cost runs base=DIR vocab4000=DIR2 --speed docs/convergence/speed.json

A lever may name the variant instead (``lever=dot variant=dot``; additive otherwise) or the
Transformer twin (``lever=transformer experiment=compare_converged_transformer``): the cost of
each job of the grid. The flags (``--rounds``, ``--steps``, ``--out`` ...) are the harness's own
settings, not the config's: they stay flags.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = ["experiment=compare_converged", "trainer.device=cpu"]


def with_variant(overrides: list[str]) -> list[str]:
    """The preset's overrides: additive unless a lever names its own ``variant=`` (or a model,
    for the Transformer: ``experiment=compare_converged_transformer``)."""
    if any(o.startswith(("variant=", "experiment=")) for o in overrides):
        experiment = [o for o in overrides if o.startswith("experiment=")]
        rest = [o for o in overrides if not o.startswith("experiment=")]
        return [*(experiment or BASE[:1]), *BASE[1:], *rest]
    return [*BASE, "variant=additive", *overrides]


def group_levers(args: list[str]) -> dict[str, list[str]]:
    """``lever=NAME key=value ... lever=NAME2 ...`` -> {NAME: its overrides}, in order (a
    lever without overrides is the preset itself); ValueError for an override before the first
    lever or a name given twice."""
    from benchmarks.groups import group_overrides

    before, levers = group_overrides(args, "lever")
    if before:
        raise ValueError(f"{before[0]!r} comes before any lever=NAME: whose override is it?")
    if not levers:
        raise ValueError("give at least one lever=NAME (its key=value overrides after it)")
    return levers


def speed(args: argparse.Namespace) -> dict:
    import torch

    from seq2seq.bench.speed import measure_training
    from seq2seq.composition import compose
    from seq2seq.data.pipeline import prepare_data
    from seq2seq.provenance import code_commit, machine
    from seq2seq.runtime import DistInfo
    from seq2seq.training.setup import setup_plan

    torch.set_num_threads(args.threads)
    levers = args.levers
    configs, data = {}, {}
    for name, overrides in levers.items():
        configs[name] = compose([*with_variant(overrides), "run_dir=unused"])
        data[name] = prepare_data(configs[name].data, splits=("train",))
    seconds: dict[str, list[float]] = {name: [] for name in levers}
    rows: dict[str, dict] = {}
    for round_ in range(args.rounds):
        for name, cfg in configs.items():
            torch.manual_seed(0)
            figures, model = measure_training(
                cfg, data[name], amp_dtype=None, warmup=args.warmup, steps=args.steps
            )
            seconds[name].append(figures.step_s)
            plan = setup_plan(
                data[name], max_tokens=cfg.data.max_tokens, seed=cfg.trainer.seed, dist=DistInfo()
            )
            rows[name] = {
                "lever": name,
                "overrides": levers[name],
                "params": model.num_parameters(),
                "updates_per_epoch": plan.num_batches(0),
                "tokens_per_update": round(figures.tokens_per_step, 1),
            }
            print(f"round {round_ + 1}: {name}: {figures.step_s:.3f} s/update", flush=True)
    base = statistics.median(seconds[next(iter(levers))])
    for name, row in rows.items():
        s = statistics.median(seconds[name])
        row |= {
            "s_per_update": round(s, 3),
            "s_per_update_rounds": [round(x, 3) for x in seconds[name]],
            "ms_per_1k_tokens": round(1000 * s / (row["tokens_per_update"] / 1000), 1),
            "vs_first": round(s / base, 3),
            "minutes_per_epoch": round(s * row["updates_per_epoch"] / 60, 1),
        }
    return {
        "machine": machine(),
        "commit": code_commit(),
        "threads": args.threads,
        "warmup": args.warmup,
        "steps": args.steps,
        "rounds": args.rounds,
        "levers": list(rows.values()),
    }


# torch.profiler op names -> where a training step's time goes
ARITHMETIC = {
    "matmuls": ("aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm"),
    "softmax and loss": ("aten::_log_softmax", "aten::exp_", "aten::exp", "aten::_softmax"),
    "elementwise (tanh, sigmoid, add, mul, ...)": (
        "aten::tanh",
        "aten::tanh_",
        "aten::sigmoid",
        "aten::sigmoid_",
        "aten::add",
        "aten::add_",
        "aten::mul",
        "aten::mul_",
        "aten::sub",
        "aten::sub_",
        "aten::lerp",
        "aten::tanh_backward",
        "aten::sigmoid_backward",
        "aten::sum",
    ),
    "optimizer (fused Adam, clipping)": ("aten::_fused_adam_", "aten::_foreach_norm"),
}


def profile(args: argparse.Namespace) -> dict:
    """Where one training step's time goes: torch.profiler's self CPU time of each op over
    ``--steps`` real steps (loop.train_step), grouped; what no op accounts for is Python and
    dispatch overhead."""
    import tempfile
    import time

    import torch
    from omegaconf import open_dict
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from seq2seq.composition import compose
    from seq2seq.data.pipeline import prepare_data
    from seq2seq.provenance import code_commit, machine
    from seq2seq.runtime import DistInfo
    from seq2seq.training import loop
    from seq2seq.training.setup import Runtime, setup_parts

    torch.set_num_threads(args.threads)
    overrides = [*with_variant(args.overrides), "logger=off"]
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = compose([*overrides, f"run_dir={run_dir}"])
        with open_dict(cfg):
            cfg.trainer.num_threads = args.threads
        data = prepare_data(cfg.data, splits=("train",))
        torch.manual_seed(0)
        parts = setup_parts(cfg, Runtime(torch.device("cpu"), None, DistInfo(), args.threads), data)
        batches = parts.plan.epoch(0)
        options = {"label_smoothing": cfg.trainer.label_smoothing, "clip_grad_norm": 1.0}
        for _ in range(args.warmup):
            loop.train_step(parts, [next(batches)], **options)
        timed = [next(batches) for _ in range(args.steps)]
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            for batch in timed:
                loop.train_step(parts, [batch], **options)
            wall = time.perf_counter() - start
    events = prof.key_averages()
    self_s = {e.key: e.self_cpu_time_total / 1e6 for e in events}
    total_op = sum(self_s.values())
    groups = {name: sum(self_s.get(op, 0.0) for op in ops) for name, ops in ARITHMETIC.items()}
    groups["other ops (copies, cat, fill, index, views, allocation)"] = total_op - sum(
        groups.values()
    )
    groups["Python and dispatch (wall time no op accounts for)"] = max(0.0, wall - total_op)
    loss = next((e for e in events if e.key == "_LinearCrossEntropy"), None)
    return {
        "machine": machine(),
        "commit": code_commit(),
        "overrides": overrides,
        "steps": args.steps,
        "s_per_update": round(wall / args.steps, 3),
        "output_layer_and_loss_share": round(loss.cpu_time_total / 1e6 / wall, 3) if loss else None,
        "shares": {name: round(seconds / wall, 3) for name, seconds in groups.items()},
        "top_ops": [
            {
                "op": e.key,
                "calls": e.count,
                "self_s_per_update": round(e.self_cpu_time_total / 1e6 / args.steps, 4),
            }
            for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:12]
        ],
    }


def run_row(name: str, run_dir: Path, speed_rows: dict[str, dict]) -> dict:
    """One converged run's cost and result, from its metrics.json and history.jsonl."""
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    history = [
        json.loads(line)
        for line in (run_dir / "history.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    val_s = sum(h.get("val_time", 0.0) for h in history)
    train_s = metrics["train_time_s"]  # the loop's time, validations included
    row = {
        "lever": name,
        "run_dir": str(run_dir),
        "params": metrics["params"],
        "updates": metrics["steps"],
        "best_step": metrics["best_step"],
        "epochs": round(metrics["epochs"], 1),
        "stopped_by": metrics["stopped_by"],
        "converged": metrics.get("converged"),
        "validations": len(history),
        "update_minutes": round((train_s - val_s) / 60, 1),
        "validation_minutes": round(val_s / 60, 1),
        "s_per_update_in_run": round((train_s - val_s) / max(1, metrics["steps"]), 3),
        "core_minutes": round((train_s + metrics["test_decode_s"]) / 60, 1),
        "val_bleu": metrics["val_bleu"],
        "test_bleu": metrics["test_bleu"],
        "test_chrf": metrics["test_chrf"],
        "commit": metrics.get("commit"),
        "cpu": metrics.get("cpu"),
    }
    if name in speed_rows:  # the cost the uncontended speed figure predicts
        s = speed_rows[name]["s_per_update"]
        row["predicted_core_minutes"] = round((s * metrics["steps"] + val_s) / 60, 1)
    return row


def runs(args: argparse.Namespace) -> dict:
    speed_rows = {}
    if args.speed:
        speed_rows = {
            r["lever"]: r
            for r in json.loads(Path(args.speed).read_text(encoding="utf-8"))["levers"]
        }
    rows = [run_row(name, Path(path), speed_rows) for name, path in args.run]
    return {"runs": rows}


def print_rows(rows: list[dict], columns: list[str]) -> None:
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    s = sub.add_parser("speed", help="seconds per update per lever, one process")
    s.add_argument(
        "levers",
        nargs="+",
        help="lever=NAME, then its overrides: lever=vocab8000 data.vocab.size=8000",
    )
    s.add_argument("--steps", type=int, default=20)
    s.add_argument("--warmup", type=int, default=5)
    s.add_argument("--rounds", type=int, default=2)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--out", required=True)
    pr = sub.add_parser("profile", help="where a training step's time goes (torch.profiler)")
    pr.add_argument(
        "overrides", nargs="*", help="overrides of the preset, e.g. data.vocab.size=4000"
    )
    pr.add_argument("--steps", type=int, default=10)
    pr.add_argument("--warmup", type=int, default=3)
    pr.add_argument("--threads", type=int, default=1)
    pr.add_argument("--out")
    r = sub.add_parser("runs", help="cost and BLEU of each lever's converged run")
    r.add_argument("run", nargs="+", type=lambda t: tuple(t.split("=", 1)), help="NAME=RUN_DIR")
    r.add_argument("--speed", help="the speed part's JSON (predicted core-minutes)")
    r.add_argument("--out")
    args = parser.parse_args(argv)
    if args.part == "speed":
        try:
            args.levers = group_levers(args.levers)
        except ValueError as err:
            s.error(str(err))
        result = speed(args)
        columns = ["lever", "params", "tokens_per_update"]
        columns += ["s_per_update", "ms_per_1k_tokens", "vs_first", "updates_per_epoch"]
        columns += ["minutes_per_epoch"]
        print_rows(result["levers"], columns)
    elif args.part == "profile":
        result = profile(args)
        print(
            f"{result['s_per_update']} s per update; output layer + loss "
            f"{result['output_layer_and_loss_share']:.0%} of it"
        )
        for name, share in result["shares"].items():
            print(f"  {share:6.1%}  {name}")
    else:
        result = runs(args)
        columns = ["lever", "updates", "best_step", "epochs", "stopped_by", "converged"]
        columns += ["update_minutes", "validation_minutes", "core_minutes"]
        columns += ["predicted_core_minutes", "test_bleu", "test_chrf"]
        print_rows(result["runs"], columns)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
