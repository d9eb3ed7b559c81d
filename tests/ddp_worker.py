"""A DDP rank of seq2seq-train with a fault injected, for tests/training/test_ddp.py.

    python -m tests.ddp_worker [hydra overrides]

runs ``seq2seq.cli.train.main()`` after applying the faults that SEQ2SEQ_TEST_FAULTS names
(comma-separated ``kind:rank[:arg]``) to this process when its RANK matches:

- ``fast_clock:R[:F]``: rank R's training clock runs F times as fast (default 4): its
  ``trainer.max_time`` comes first, as when ranks drift apart;
- ``signal:R:N``: rank R sends itself SIGTERM just before its N-th training step;
- ``fail_validation:R``: rank R's validation raises (a validation error, a full disk);
- ``record_draws:R``: rank R writes ``torch.rand(4)`` at its first training step, as JSON, to
  ``$SEQ2SEQ_TEST_OUT/draws.<rank>.json`` (each rank's random stream).
"""

from __future__ import annotations

import json
import os
import signal
import time
import types
from pathlib import Path


def install(faults: str, rank: int) -> None:
    for fault in filter(None, faults.split(",")):
        kind, target, *arg = fault.split(":")
        if int(target) == rank:
            FAULTS[kind](rank, *arg)


def fast_clock(rank: int, factor: str = "4") -> None:
    from seq2seq.training import loop

    start, speed = time.perf_counter(), float(factor)
    loop.time = types.SimpleNamespace(
        perf_counter=lambda: start + (time.perf_counter() - start) * speed
    )


def around_steps(before) -> None:
    """Call ``before(n)`` before the n-th training step (1-based)."""
    from seq2seq.training import loop

    real, calls = loop.train_step, {"n": 0}

    def step(*args, **kwargs):
        calls["n"] += 1
        before(calls["n"])
        return real(*args, **kwargs)

    loop.train_step = step


def signal_at(rank: int, step: str) -> None:
    around_steps(lambda n: n == int(step) and os.kill(os.getpid(), signal.SIGTERM))


def record_draws(rank: int) -> None:
    import torch

    def record(n: int) -> None:
        if n == 1:
            state = torch.get_rng_state()
            draws = torch.rand(4).tolist()
            torch.set_rng_state(state)  # the run itself draws as it would have
            out = Path(os.environ["SEQ2SEQ_TEST_OUT"]) / f"draws.{rank}.json"
            out.write_text(json.dumps(draws))

    around_steps(record)


def fail_validation(rank: int) -> None:
    from seq2seq.training import loop

    def failing(*args, **kwargs):
        raise OSError(28, "No space left on device (injected)")

    loop.validate = failing


FAULTS = {
    "fast_clock": fast_clock,
    "signal": signal_at,
    "record_draws": record_draws,
    "fail_validation": fail_validation,
}


if __name__ == "__main__":
    install(os.environ.get("SEQ2SEQ_TEST_FAULTS", ""), int(os.environ.get("RANK", 0)))
    from seq2seq.cli.train import main

    main()
