"""The speed benchmark's run: every chosen variant at every chosen precision, one row each.

For each variant (an attention preset on the RNN, or the Transformer) and precision it measures
training throughput (real target tokens/s after a warm-up, peak memory, FLOP rate as a fraction
of the machine's matmul peak; :mod:`seq2seq.bench.speed`) and the fixed-length decoding speed of
the test set for each beam size; int8 is a decoding precision (an int8 copy of the untrained
model, no training row). A peer runner (the checkout's ``benchmarks/peers``), when given, runs
the peer toolkits after each variant, so ours and theirs alternate on the same machine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..composition import compose
from ..config import run_label
from ..modules.attention import presets

# every attention preset of the registry on the RNN, and the Transformer
VARIANTS = {f"rnn/{name}": ["model=rnn", *overrides] for name, overrides in presets().items()}
VARIANTS["transformer"] = ["model=transformer"]
PRECISIONS = ("fp32", "bf16", "int8")

# (cfg of the variant, prepared data, "rnn" or "transformer", our real target tokens per step)
# -> one result per peer toolkit
PeerRunner = Callable[[Any, Any, str, int], list[dict]]


@dataclass
class Options:
    """What to measure (seq2seq-benchmark's keys of the same names)."""

    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    precisions: list[str] | None = None  # None: fp32, native bf16, int8 where this CPU has them
    steps: int = 20  # timed training steps, after the warm-up
    warmup: int = 3
    beams: list[int] = field(default_factory=lambda: [1, 5])
    decode_sentences: int = 1000  # test sentences decoded
    decode_length: int = 30  # every output is forced to this many tokens
    threads: int = 2


def run(options: Options, overrides: list[str], peers: PeerRunner | None = None) -> dict:
    """The benchmark's results: ``machine``, ``threads``, one row per (variant, precision) in
    ``runs`` (printed as a JSON line as soon as measured), the peers' results in ``peers``,
    ``matmul_peak_gflops`` per precision. ``overrides`` apply to every variant's config."""
    import torch

    from ..data.pipeline import prepare_data
    from ..provenance import machine
    from ..training.setup import setup_model
    from .speed import matmul_peak, measure_training, model_matmul_shapes

    torch.set_num_threads(options.threads)
    unknown = [v for v in options.variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant {unknown[0]!r}; valid: {', '.join(VARIANTS)}")
    precisions = options.precisions or default_precisions()
    dtypes = {"fp32": None, "bf16": torch.bfloat16}
    results: dict = {
        "machine": machine(),
        "threads": torch.get_num_threads(),
        "runs": [],
        "peers": [],
        "decode_length": options.decode_length,
        "decode_sentences": options.decode_sentences,
    }
    # the data config is shared; compose with a variant so its model overrides apply
    base_cfg = compose([*VARIANTS[options.variants[0]], *overrides])
    data = prepare_data(base_cfg.data, splits=("train", "test"))
    tok = data.tokenizer
    test_src = [ids.tolist() for ids in data.splits["test"].src_ids[: options.decode_sentences]]
    peaks: dict[str, float] = {}
    for variant in options.variants:
        cfg = compose([*VARIANTS[variant], *overrides])
        for precision in precisions:
            torch.manual_seed(0)
            if precision == "int8":  # decoding only: an int8 copy of the (untrained) model
                from ..decoding.quantize import quantize_int8

                model = setup_model(
                    cfg.model,
                    cfg.attention,
                    src_vocab_size=tok.src_vocab_size,
                    tgt_vocab_size=tok.tgt_vocab_size,
                )
                row = {"variant": variant, "precision": precision, "params": model.num_parameters()}
                row.update(decode_row(options, quantize_int8(model.eval()), test_src, None))
                results["runs"].append(row)
                print(json.dumps(row), flush=True)
                continue
            amp = dtypes[precision]
            train, model = measure_training(
                cfg, data, amp_dtype=amp, warmup=options.warmup, steps=options.steps
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
            row.update(decode_row(options, model.eval(), test_src, amp))
            results["runs"].append(row)
            print(json.dumps(row), flush=True)
        if peers is not None:
            family = str(cfg.model.name)
            ours_tokens = max(
                r.get("tokens_per_step", 0) for r in results["runs"] if r["variant"] == variant
            )
            results["peers"] += peers(cfg, data, family, round(ours_tokens))
    results["matmul_peak_gflops"] = {k: round(v, 1) for k, v in peaks.items()}
    results["ratios"] = ratio_lines(results)
    return results


def default_precisions() -> list[str]:
    """fp32; bf16 where the CPU has it natively (emulated bf16 runs at a few GFLOP/s); int8
    where torch has its x86/fbgemm engine."""
    from ..decoding.quantize import int8_engine
    from ..provenance import machine

    precisions = ["fp32", "bf16"] if machine()["native_bf16"] else ["fp32"]
    if "bf16" not in precisions:
        print("bf16 skipped: this CPU has no native bf16 (precisions=[bf16] to force it)")
    if int8_engine() is not None:
        precisions.append("int8")
    return precisions


def decode_row(options: Options, model, test_src: list, amp) -> dict:
    """Fixed-length decoding speed of ``model`` for each beam size: a part of a table row."""
    from .speed import measure_fixed_decoding

    row = {}
    for beam in options.beams:
        speed = measure_fixed_decoding(
            model, test_src, beam_size=beam, length=options.decode_length, amp_dtype=amp
        )
        name = "greedy" if beam == 1 else f"beam{beam}"
        row[f"{name}_sentences_per_s"] = round(speed.sentences_per_s, 1)
        row[f"{name}_tokens_per_s"] = round(speed.tokens_per_s, 1)
    return row


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


RUN_COLUMNS = [
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
PEER_COLUMNS = [
    "toolkit",
    "family",
    "params",
    "real_tgt_tokens_per_batch",
    "train_tokens_per_s",
    "decode_greedy_tokens_per_s",
    "decode_beam5_tokens_per_s",
]


def report(results: dict) -> str:
    """The machine line, the table of our rows, the peers' table (if any) and the ratio lines."""
    lines = [", ".join(f"{k}: {v}" for k, v in results["machine"].items())]
    lines += markdown_table(RUN_COLUMNS, results["runs"])
    if results["peers"]:
        lines += markdown_table(PEER_COLUMNS, results["peers"])
    lines += results["ratios"]
    return "\n".join(lines)


def markdown_table(columns: list[str], rows: list[dict]) -> list[str]:
    """A Markdown table of ``rows`` (a missing value is an empty cell)."""
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows),
    ]
