"""python -m benchmarks.speed peers=true [seq2seq-benchmark's keys]: our speed benchmark with
the peer toolkits (``benchmarks/peers``) run after each of our variants.

``seq2seq-benchmark peers=true`` hands itself over to this script, since the installed package
never imports the checkout: run either in the checkout's root, after ``make bench-peers``.
"""

from __future__ import annotations

import sys

from benchmarks.peers.alongside import PeerRunner
from seq2seq.cli.benchmark import main as benchmark_main


def main(argv: list[str] | None = None) -> None:
    benchmark_main(sys.argv[1:] if argv is None else argv, peer_runner=PeerRunner)


if __name__ == "__main__":
    main()
