"""seq2seq-benchmark [key=value ...]: training and decoding speed, JSON out.

Measures, on Multi30k de->en with its sentencepiece vocabulary, for the RNN with each attention
variant and for the Transformer, at fp32 and bf16: training throughput (real target tokens/s
after a warm-up, peak memory, FLOP rate as a fraction of the machine's matmul peak) and decoding
speed of the test set (sentences/s and output tokens/s, greedy and beam 5). With ``peers=true``
it also runs the peer toolkits (Joey NMT and OpenNMT-py, installed by ``make bench-peers``)
alternately with ours and prints one line per ratio: ``ratio <peer> <family> <metric> <ours/peer>``.

The benchmark's own keys (Hydra's key=value syntax; a list as 'key=[a,b]', quoted for the shell):

    variants=[rnn/additive,transformer]  the variants measured (default: every one)
    precisions=[fp32,bf16,int8]  default: fp32, bf16 where the CPU has it natively (AVX512-BF16/AMX;
                                 emulated bf16 runs at a few GFLOP/s), int8 (decoding only) where
                                 torch has its x86/fbgemm engine
    steps=20 warmup=3            timed training steps, after the warm-up steps
    beams=[1,5]                  beam sizes decoded (1: greedy)
    decode_sentences=1000        test sentences decoded
    decode_length=30             every output is forced to this many tokens
    threads=2
    peers=false peer_dir=build/peers  also the peer toolkits (their venvs in peer_dir)
    out=benchmark.json

Any other key=value overrides the training config of every variant (data.max_tokens=4096).
The peer harness is not installed with the package: ``peers=true`` hands the command over to
the source checkout's ``python -m benchmarks.speed`` (the same arguments) in the current
directory, the checkout's root.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..bench.suite import PRECISIONS, Options, PeerRunner, report, run
from ..composition import config_error_line
from ..errors import ConfigError
from .common import handle_info_flags, report_user_errors

PEER_SCRIPT = Path("benchmarks", "speed.py")  # in a source checkout's root
PEERS_NEED_CHECKOUT = (
    f"peers=true runs {PEER_SCRIPT} of a source checkout: run it in the checkout's root, "
    "after `make bench-peers`"
)


@dataclass
class Arguments(Options):
    """The benchmark's keys: what to measure (:class:`Options`), the peers and the output."""

    peers: bool = False
    peer_dir: str = "build/peers"
    out: str = "benchmark.json"


def parse(argv: list[str]) -> tuple[Arguments, list[str]]:
    """The benchmark's keys and the training config's overrides of ``argv``; ``-h`` and
    ``--cfg job`` answer at once (the training config every variant starts from)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    keys = {f.name for f in dataclasses.fields(Arguments)}
    ours = [arg for arg in argv if arg.partition("=")[0] in keys]
    overrides = handle_info_flags(
        [arg for arg in argv if arg not in ours],
        doc=__doc__,
        config_name="train",
        example="data.max_tokens=4096",
    )
    try:
        values = OmegaConf.merge(OmegaConf.structured(Arguments), OmegaConf.from_dotlist(ours))
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        raise ConfigError(f"{key}: " * bool(key) + config_error_line(err)) from None
    args = OmegaConf.to_object(values)
    bad = [p for p in args.precisions or () if p not in PRECISIONS]
    if bad:
        raise ConfigError(f"unknown precision {bad[0]!r}; valid: {', '.join(PRECISIONS)}")
    return args, overrides


def main(
    argv: list[str] | None = None,
    peer_runner: Callable[[Path, Options], PeerRunner] | None = None,
) -> None:
    """The command. ``peer_runner(peer_dir, options)`` makes the runner of the peer toolkits
    for ``peers=true``: the checkout's ``benchmarks/speed.py`` passes it; without one,
    ``peers=true`` hands the whole command over to that script."""
    argv = sys.argv[1:] if argv is None else argv
    args, overrides = report_user_errors(lambda: parse(argv))
    if args.peers and peer_runner is None:
        report_user_errors(lambda: hand_over_to_peer_script(argv))
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from ..runtime import keep_freed_memory

    keep_freed_memory()  # as seq2seq-train and seq2seq-evaluate do
    options = Options(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Options)})

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
    main()
