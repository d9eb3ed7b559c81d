"""Runs a peer toolkit's own entry point in the peer's interpreter and only observes it.

usage: <peer venv>/bin/python benchmarks/peers/runner.py MODULE MODE ARGS...

MODULE names the peer's module (``benchmarks.peers.joeynmt``), found from the checkout root;
its ``PEER.enter(MODE, ARGS, recorder)`` patches the toolkit so that each step's real target
tokens are counted and returns the entry point, which runs with ``sys.argv`` set for MODE.
A global torch optimizer post-step hook writes one JSON line per optimizer step to
``PEER_STEPS_FILE``: ``time.perf_counter()`` and ``time.process_time()`` right after the step and
the tokens counted since the previous step (the first line also has the parameter count and
the thread count). ``PEER_THREADS`` sets torch's intra-op threads (default 2).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path


class StepRecorder:
    """Counts target tokens per optimizer step and writes one record per step (the
    ``benchmarks.peers.Observer`` a peer's ``enter`` gets)."""

    def __init__(self, out=None):
        self.out = out
        self.tokens = 0
        self.step = 0

    def count_tokens(self, cls, method, tokens):
        original = getattr(cls, method)
        recorder = self

        def counting(obj, *args, **kwargs):
            recorder.tokens += tokens(obj, *args, **kwargs)
            return original(obj, *args, **kwargs)

        setattr(cls, method, counting)

    def __call__(self, optimizer, *_) -> None:  # torch's optimizer post-step hook
        import torch

        self.step += 1
        record = {
            "step": self.step,
            "t": time.perf_counter(),
            "cpu": time.process_time(),
            "tokens": self.tokens,
        }
        if self.step == 1:
            seen = {id(p): p.numel() for g in optimizer.param_groups for p in g["params"]}
            record["params"] = sum(seen.values())
            record["threads"] = torch.get_num_threads()
        self.tokens = 0
        if self.out is not None:
            self.out.write(json.dumps(record) + "\n")
            self.out.flush()


def main(argv: list[str]) -> None:
    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook

    module, mode, args = argv[0], argv[1], argv[2:]
    torch.set_num_threads(int(os.environ.get("PEER_THREADS", "2")))
    steps_file = os.environ.get("PEER_STEPS_FILE")
    with open(steps_file or os.devnull, "w", encoding="utf-8") as out:
        recorder = StepRecorder(out)
        register_optimizer_step_post_hook(recorder)
        entry_point = importlib.import_module(module).PEER.enter(mode, args, recorder)
        entry_point()


if __name__ == "__main__":
    # this folder holds joeynmt.py, which must not shadow the real joeynmt: take it off the path,
    # and reach the peer modules from the checkout root, after the peer's own packages
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != here]
    sys.path.append(str(here.parents[1]))
    main(sys.argv[1:])
