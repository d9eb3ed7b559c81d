"""A stand-in peer toolkit for the harness tests: it trains a tiny torch model with real optimizer
steps and "decodes" fixed-length outputs, so ``run_peer`` and ``runner.py`` run end to end with
our own interpreter, without Joey NMT or OpenNMT-py installed."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.peers import Observer, Peer, PeerRun


class Trainer:
    """The fake toolkit's training loop: one optimizer step per ``step(batch)``."""

    def __init__(self):
        import torch

        self.model = torch.nn.Linear(4, 3)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)

    def step(self, batch: list[int]) -> None:
        import torch

        self.optimizer.zero_grad()
        self.model(torch.ones(len(batch), 4)).sum().backward()
        self.optimizer.step()


def train(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    # runner.py must not let benchmarks/peers/joeynmt.py shadow a real top-level joeynmt
    print("top-level joeynmt:", getattr(importlib.util.find_spec("joeynmt"), "origin", None))
    trainer = Trainer()
    print("params", sum(p.numel() for p in trainer.model.parameters()))
    for step in range(1, config["total_steps"] + 1):
        trainer.step([0] * config["batch_size"])
        print(f"step {step} {100.0 * step} tok/s")
    Path(config["model_dir"]).mkdir(parents=True, exist_ok=True)
    (Path(config["model_dir"]) / "final.pt").write_text("fake")


def decode(src: str, output: str, length: str) -> None:
    lines = Path(src).read_text(encoding="utf-8").splitlines()
    Path(output).write_text("".join("x " * int(length) + "\n" for _ in lines), encoding="utf-8")
    print("took 0.5s")


class FakePeer(Peer):
    name = "fake"
    version = "0"
    batch_size_unit = "rows"
    decode_time_source = "fake log 'took'"
    step_pattern = re.compile(r"step (?P<step>\d+) (?P<tgt_tok_per_s>[\d.]+) tok/s")
    params_pattern = re.compile(r"params (\d+)")
    decode_seconds_pattern = re.compile(r"took (?P<seconds>[\d.]+)s")
    checkpoint_glob = "*.pt"

    def batch_order(self, src_lens: Sequence[int], tgt_lens: Sequence[int], seed: int) -> list:
        return [list(range(len(src_lens)))]

    def batch_cost(self, src_len: int, tgt_len: int) -> int:
        return 1

    def train_args(self, run: PeerRun) -> list[str]:
        config = {
            "total_steps": run.total_steps,
            "batch_size": run.batch_size,
            "model_dir": str(run.model_dir),
        }
        path = run.run_dir / "train.yaml"
        path.write_text(json.dumps(config))
        return ["train", str(path)]

    def decode_args(
        self, run: PeerRun, *, beam: int, checkpoint: Path, src: Path, output: Path
    ) -> tuple[list[str], Path]:
        return ["decode", str(src), str(output), str(run.decode_max_len)], output

    def checkpoint_names(self, total_steps: int) -> list[str]:
        return ["final.pt"]

    def enter(self, mode: str, args: list[str], observer: Observer):
        observer.count_tokens(Trainer, "step", lambda _, batch: len(batch))
        sys.argv = ["fake", mode, *args]
        return functools.partial(train if mode == "train" else decode, *args)


PEER = FakePeer()
