"""seq2seq-benchmark [--flags] [hydra overrides]: training and decoding speed, JSON out.

Measures, on Multi30k de->en with its sentencepiece vocabulary, for the RNN with each attention
variant and for the Transformer, at fp32 and bf16: training throughput (real target tokens/s
after a warm-up, peak memory, FLOP rate as a fraction of the machine's matmul peak) and decoding
speed of the test set (sentences/s and output tokens/s, greedy and beam 5). With ``--peers`` it
also runs the peer toolkits (Joey NMT and OpenNMT-py, installed by ``make bench-peers``)
alternately with ours and prints one line per ratio: ``ratio <peer> <family> <metric> <ours/peer>``.
The peer harness is not installed with the package: ``--peers`` runs the source checkout's
``python -m benchmarks.speed`` (the same flags) in the current directory, the checkout's root.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ..bench.suite import PRECISIONS, VARIANTS, Options, PeerRunner, report, run
from .common import report_user_errors

PEER_SCRIPT = Path("benchmarks", "speed.py")  # in a source checkout's root
PEERS_NEED_CHECKOUT = (
    f"--peers runs {PEER_SCRIPT} of a source checkout: run it in the checkout's root, "
    "after `make bench-peers`"
)


def main(
    argv: list[str] | None = None,
    peer_runner: Callable[[Path, Options], PeerRunner] | None = None,
) -> None:
    """The command. ``peer_runner(peer_dir, options)`` makes the runner of the peer toolkits
    for ``--peers``: the checkout's ``benchmarks/speed.py`` passes it; without one,
    ``--peers`` hands the whole command over to that script."""
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
        choices=PRECISIONS,
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
    if args.peers and peer_runner is None:
        report_user_errors(lambda: hand_over_to_peer_script(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from ..runtime import keep_freed_memory

    keep_freed_memory()  # as seq2seq-train and seq2seq-evaluate do
    options = Options(
        variants=args.variants,
        precisions=args.precisions,
        steps=args.steps,
        warmup=args.warmup,
        beams=args.beams,
        decode_sentences=args.decode_sentences,
        decode_length=args.decode_length,
        threads=args.threads,
    )

    def go() -> None:
        peers = peer_runner(Path(args.peer_dir), options) if args.peers else None
        results = run(options, overrides, peers)
        print(report(results))
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")

    report_user_errors(go)


def hand_over_to_peer_script(argv: list[str]) -> None:
    """Replace this process by ``python -m benchmarks.speed <argv>`` of the source
    checkout in the current directory (the installed package never imports the checkout)."""
    if not PEER_SCRIPT.is_file():
        raise FileNotFoundError(PEERS_NEED_CHECKOUT)
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.speed", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
