"""seq2seq-benchmark [--flags] [hydra overrides]: training and decoding speed, JSON out.

Measures, on Multi30k de->en with its sentencepiece vocabulary, for the RNN with each attention
variant and for the Transformer, at fp32 and bf16: training throughput (real target tokens/s
after a warm-up, peak memory, FLOP rate as a fraction of the machine's matmul peak) and decoding
speed of the test set (sentences/s and output tokens/s, greedy and beam 5). With ``--peers`` it
also runs the peer toolkits (Joey NMT and OpenNMT-py, installed by ``make bench-peers``)
alternately with ours and prints one line per ratio: ``ratio <peer> <family> <metric> <ours/peer>``.
The peer harness is not installed with the package: it is ``benchmarks/peers`` of the source
checkout, found beside the package and imported only for ``--peers``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import sys
from pathlib import Path

from ..config import run_label
from ..modules.attention import presets
from .common import compose_config, report_user_errors

# where a source checkout has benchmarks/ (the peer harness) beside the package
CHECKOUT_ROOT = Path(__file__).resolve().parents[2]
PEERS_NEED_CHECKOUT = (
    "--peers needs a source checkout (benchmarks/ beside the seq2seq package) and "
    "`make bench-peers`"
)

# every attention preset of the registry on the RNN, and the Transformer
VARIANTS = {f"rnn/{name}": ["model=rnn", *overrides] for name, overrides in presets().items()}
VARIANTS["transformer"] = ["model=transformer"]


def compose(overrides: list[str]):
    return compose_config("train", overrides)


def run(args: argparse.Namespace, overrides: list[str]) -> dict:
    import torch

    from ..bench.speed import matmul_peak, measure_training, model_matmul_shapes
    from ..data.pipeline import prepare_data
    from ..decoding.quantize import int8_engine, quantize_int8
    from ..provenance import machine
    from ..training.setup import setup_model

    torch.set_num_threads(args.threads)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant {unknown[0]!r}; valid: {', '.join(VARIANTS)}")
    toolkits = peer_toolkits(Path(args.peer_dir)) if args.peers else None
    dtypes = {"fp32": None, "bf16": torch.bfloat16}
    if args.precisions is None:
        args.precisions = ["fp32", "bf16"] if machine()["native_bf16"] else ["fp32"]
        if "bf16" not in args.precisions:
            print("bf16 skipped: this CPU has no native bf16 (--precisions bf16 to force it)")
        if int8_engine() is not None:
            args.precisions.append("int8")
    results: dict = {
        "machine": machine(),
        "threads": torch.get_num_threads(),
        "runs": [],
        "peers": [],
        "decode_length": args.decode_length,
        "decode_sentences": args.decode_sentences,
    }
    # the data config is shared; compose with a variant so its model overrides apply
    base_cfg = compose([*VARIANTS[args.variants[0]], *overrides])
    data = prepare_data(base_cfg.data, splits=("train", "test"))
    tok = data.tokenizer
    test_src = [ids.tolist() for ids in data.splits["test"].src_ids[: args.decode_sentences]]
    peaks: dict[str, float] = {}
    for variant in args.variants:
        cfg = compose([*VARIANTS[variant], *overrides])
        for precision in args.precisions:
            torch.manual_seed(0)
            if precision == "int8":  # decoding only: an int8 copy of the (untrained) model
                model = setup_model(
                    cfg.model,
                    cfg.attention,
                    src_vocab_size=tok.src_vocab_size,
                    tgt_vocab_size=tok.tgt_vocab_size,
                )
                row = {"variant": variant, "precision": precision, "params": model.num_parameters()}
                row.update(decode_row(args, quantize_int8(model.eval()), test_src, None))
                results["runs"].append(row)
                print(json.dumps(row), flush=True)
                continue
            amp = dtypes[precision]
            train, model = measure_training(
                cfg, data, amp_dtype=amp, warmup=args.warmup, steps=args.steps
            )
            if precision not in peaks:
                shapes = model_matmul_shapes(model, cfg.data.max_tokens)
                peaks[precision] = matmul_peak(shapes, amp or torch.float32)
            row = {
                "variant": variant,
                "precision": precision,
                "params": model.num_parameters(),
                "train_tokens_per_s": round(train.tokens_per_s, 1),
                "tokens_per_step": round(train.tokens_per_step, 1),
                "step_s": round(train.step_s, 4),
                "model_gflops_per_s": round(train.flops_per_step / train.step_s / 1e9, 1),
                "matmul_peak_gflops": round(peaks[precision], 1),
                "fraction_of_peak": round(
                    train.flops_per_step / train.step_s / 1e9 / peaks[precision], 3
                ),
                "peak_rss_mb": round(train.peak_rss_mb),
            }
            row.update(decode_row(args, model.eval(), test_src, amp))
            results["runs"].append(row)
            print(json.dumps(row), flush=True)
        if toolkits is not None:
            family = str(cfg.model.name)
            ours_tokens = max(
                r.get("tokens_per_step", 0) for r in results["runs"] if r["variant"] == variant
            )
            for toolkit in toolkits.peers():
                results["peers"].append(
                    run_one_peer(args, data, cfg, toolkits, toolkit, family, round(ours_tokens))
                )
    results["matmul_peak_gflops"] = {k: round(v, 1) for k, v in peaks.items()}
    return results


def decode_row(args: argparse.Namespace, model, test_src: list, amp) -> dict:
    """Fixed-length decoding speed of ``model`` for each beam size: a part of a table row."""
    from ..bench.speed import measure_fixed_decoding

    row = {}
    for beam in args.beams:
        speed = measure_fixed_decoding(
            model, test_src, beam_size=beam, length=args.decode_length, amp_dtype=amp
        )
        name = "greedy" if beam == 1 else f"beam{beam}"
        row[f"{name}_sentences_per_s"] = round(speed.sentences_per_s, 1)
        row[f"{name}_tokens_per_s"] = round(speed.tokens_per_s, 1)
    return row


def peer_toolkits(peer_dir: Path):
    """The peer harness ``benchmarks.peers`` of the source checkout this package sits in, imported
    only here (it is not installed with the package), once each peer's venv is known to exist."""
    init = CHECKOUT_ROOT / "benchmarks" / "__init__.py"
    if "benchmarks" not in sys.modules:
        if not init.is_file():
            raise FileNotFoundError(PEERS_NEED_CHECKOUT)
        spec = importlib.util.spec_from_file_location(
            "benchmarks", init, submodule_search_locations=[str(init.parent)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["benchmarks"] = module
        spec.loader.exec_module(module)
    importlib.import_module("benchmarks.peers.harness")
    toolkits = importlib.import_module("benchmarks.peers")
    for name in toolkits.peers():
        if not (peer_dir / f"{name}-venv").is_dir():
            raise FileNotFoundError(f"{peer_dir / f'{name}-venv'} missing: run `make bench-peers`")
    return toolkits


def run_one_peer(args, data, cfg, toolkits, toolkit: str, family: str, target_tokens: int) -> dict:
    """Train and decode one peer toolkit on the same pieces, batch size and decode workload."""
    harness = toolkits.harness
    peer_dir = Path(args.peer_dir)
    venv = peer_dir / f"{toolkit}-venv"
    workdir = peer_dir / "work-bench"
    if not (workdir / "data" / "meta.json").is_file():
        train, test = data.splits["train"], data.splits["test"]
        harness.write_peer_data(
            workdir,
            train.src_text,
            train.tgt_text,
            test.src_text,
            data.tokenizer.src_model_path,
            src_lang=cfg.data.src,
            tgt_lang=cfg.data.tgt,
        )
    result = harness.run_peer(
        toolkit,
        family,
        workdir=workdir,
        venv_dir=venv,
        steps=args.steps,
        warmup_steps=args.warmup,
        batch_target_tokens=target_tokens,
        decode_beam=tuple(args.beams),
        decode_max_len=args.decode_length,
        threads=args.threads,
        decode_limit=args.decode_sentences,
    )
    print(
        json.dumps(
            {
                k: v
                for k, v in result.items()
                if not isinstance(v, (dict, list)) and "command" not in k
            }
        ),
        flush=True,
    )
    return result


def ratio_lines(results: dict) -> list[str]:
    """``ratio <peer> <family> <metric> <ours/peer>``, ours = the best of our precisions."""
    lines = []
    metrics = {
        "train_tokens_per_s": ("train_tokens_per_s", "train_tokens_per_s"),
        "greedy_tokens_per_s": ("greedy_tokens_per_s", "decode_greedy_tokens_per_s"),
        "beam5_tokens_per_s": ("beam5_tokens_per_s", "decode_beam5_tokens_per_s"),
    }
    for peer in results["peers"]:
        family = peer["family"]
        ours = [
            r for r in results["runs"] if r["variant"] == run_label(family, "additive", sep="/")
        ]
        for metric, (our_key, peer_key) in metrics.items():
            best = max((r.get(our_key) or 0 for r in ours), default=0)
            if best and peer.get(peer_key):
                lines.append(
                    f"ratio {peer['toolkit']} {family} {metric} {best / peer[peer_key]:.2f}"
                )
    return lines


def print_table(results: dict) -> None:
    cols = [
        "variant",
        "precision",
        "params",
        "train_tokens_per_s",
        "fraction_of_peak",
        "peak_rss_mb",
        "greedy_tokens_per_s",
        "beam5_tokens_per_s",
        "greedy_sentences_per_s",
        "beam5_sentences_per_s",
    ]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in results["runs"]:
        print("| " + " | ".join(str(row.get(c, "")) for c in cols) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="seq2seq-benchmark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--variants", nargs="+", default=list(VARIANTS), help=f"from: {', '.join(VARIANTS)}"
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=["fp32", "bf16", "int8"],
        help="default: fp32, bf16 where the CPU has it natively (AVX512-BF16/AMX; emulated bf16 "
        "runs at a few GFLOP/s), and int8 (decoding only) where torch has its x86/fbgemm engine",
    )
    parser.add_argument(
        "--steps", type=int, default=20, help="timed training steps (after the warm-up)"
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--decode-sentences", type=int, default=1000, help="test sentences decoded")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--decode-length", type=int, default=30, help="every output is forced to this many tokens"
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also run the peer toolkits (a source checkout, after `make bench-peers`)",
    )
    parser.add_argument("--peer-dir", default="build/peers")
    parser.add_argument("--out", default="benchmark.json")
    args, overrides = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from ..runtime import keep_freed_memory

    keep_freed_memory()  # as seq2seq-train and seq2seq-evaluate do

    def go() -> None:
        results = run(args, overrides)
        print(", ".join(f"{k}: {v}" for k, v in results["machine"].items()))
        print_table(results)
        if results["peers"]:
            cols = [
                "toolkit",
                "family",
                "params",
                "real_tgt_tokens_per_batch",
                "train_tokens_per_s",
                "decode_greedy_tokens_per_s",
                "decode_beam5_tokens_per_s",
            ]
            print("| " + " | ".join(cols) + " |")
            print("|" + "---|" * len(cols))
            for peer in results["peers"]:
                print("| " + " | ".join(str(peer.get(c, "")) for c in cols) + " |")
        results["ratios"] = ratio_lines(results)
        print("\n".join(results["ratios"]))
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")

    report_user_errors(go)


if __name__ == "__main__":
    main(sys.argv[1:])
