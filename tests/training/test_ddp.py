"""DDP on CPU (gloo, 2 processes launched as srun would: one process per rank, no torchrun
agent to clean up after them): every stop decision is taken together, a failure on rank 0
reaches every rank, resume gives each rank its own generators, luong without input feeding
trains, and the ranks draw their own random streams. tests/ddp_worker.py injects the faults."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from seq2seq.checkpoint import load_checkpoint
from tests.conftest import TINY, TINY_RNN, needs_multi30k

pytestmark = [needs_multi30k, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Rank:
    code: int | None  # None: still running at the deadline (killed)
    out: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(args: list[str], *, world: int = 2, faults: str = "", timeout: float = 150,
           out_dir: Path | None = None) -> list[Rank]:  # fmt: skip
    """``world`` ranks of seq2seq-train (through tests.ddp_worker), each its own process with
    RANK/WORLD_SIZE/MASTER_* set; their exit codes and output once all ended, or the deadline
    passed (those still running are killed: code None)."""
    port = free_port()
    procs = []
    for rank in range(world):
        env = os.environ | {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
            "SEQ2SEQ_TEST_FAULTS": faults,
            "SEQ2SEQ_TEST_OUT": str(out_dir or ""),
            "SEQ2SEQ_DIST_TIMEOUT_S": str(timeout),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.ddp_worker", *args],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    deadline = time.monotonic() + timeout
    ranks = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            ranks.append(Rank(proc.returncode, out))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            ranks.append(Rank(None, out))
    return ranks


def tiny(shared_cache: Path, run_dir: Path, *extra: str) -> list[str]:
    return [*TINY, *TINY_RNN, f"data.cache_dir={shared_cache}", f"hydra.run.dir={run_dir}", *extra]


def report(ranks: list[Rank]) -> str:
    return "\n".join(f"--- rank {i} (exit {r.code}):\n{r.out[-2500:]}" for i, r in enumerate(ranks))


def test_max_time_stop_with_drifting_clocks_ends_every_rank(shared_cache, tmp_path):
    """Rank 1's clock runs 4x fast, so its trainer.max_time comes while rank 0 still has time:
    both must stop at the same step (one rank in a step's all-reduce and the other in the
    final validation's broadcast wait for each other forever)."""
    ranks = launch(
        tiny(
            shared_cache,
            tmp_path,
            "trainer.max_steps=100000",
            "trainer.max_time=8",
            "trainer.val_every=7",
            "trainer.log_every=100",
        ),
        faults="fast_clock:1:4",
    )
    assert [r.code for r in ranks] == [0, 0], report(ranks)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["stopped_by"] == "max_time"


def test_a_signal_on_one_rank_stops_every_rank(shared_cache, tmp_path):
    """SIGTERM to rank 1 alone (before its 3rd step): every rank stops after that step, saves
    last.pt and exits 128 + 15, instead of rank 0 waiting in a collective rank 1 left."""
    ranks = launch(
        tiny(shared_cache, tmp_path, "trainer.max_steps=50", "trainer.val_every=40"),
        faults="signal:1:3",
    )
    assert [r.code for r in ranks] == [143, 143], report(ranks)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["progress"]["step"] == 3


def test_a_failure_in_rank_0s_validation_ends_every_rank(shared_cache, tmp_path):
    """Rank 0's validation raises (a full disk): rank 1, waiting for the validation's outcome,
    learns it and fails with rank 0's reason, within seconds."""
    start = time.monotonic()
    ranks = launch(
        tiny(shared_cache, tmp_path, "trainer.max_steps=50", "trainer.val_every=2"),
        faults="fail_validation:0",
    )
    assert [r.code for r in ranks] == [1, 1], report(ranks)
    assert time.monotonic() - start < 120
    assert "rank 0 failed at step 2: OSError: [Errno 28] No space left on device" in ranks[1].out
    assert "No space left on device (injected)" in ranks[0].out


def test_luong_without_input_feeding_trains_and_ranks_draw_their_own_streams(tmp_path):
    """attention.wiring=luong attention.input_feeding=false under DDP (its decoder used to hold
    a parameter no forward used: DDP refused at step 2); the ranks' random streams (dropout
    masks, sampling coins) differ from the first training step on; and rank 0 alone prepares
    the data (trains the tokenizer), the other rank reads its cache."""
    ranks = launch(
        tiny(
            tmp_path / "cache",
            tmp_path / "run",
            "attention=multiplicative",
            "attention.score=general",
            "attention.wiring=luong",
            "attention.input_feeding=false",
            "trainer.max_steps=3",
            "trainer.val_every=3",
        ),
        faults="record_draws:0,record_draws:1",
        out_dir=tmp_path,
    )
    assert [r.code for r in ranks] == [0, 0], report(ranks)
    draws = [json.loads((tmp_path / f"draws.{rank}.json").read_text()) for rank in (0, 1)]
    assert draws[0] != draws[1]
    trained = ["trained sentencepiece model" in rank.out for rank in ranks]
    assert trained == [True, False], report(ranks)


def test_ddp_resume_gives_each_rank_its_own_generators(shared_cache, tmp_path):
    """With dropout, 2 ranks trained 4 steps straight equal 2 steps, then a resume to 4: each
    rank must get its own generator states back (every rank used to get rank 0's). The same
    checkpoint then resumes on one process (fewer ranks than saved it)."""
    common = ["model.dropout=0.3", "trainer.val_every=2"]
    straight = launch(tiny(shared_cache, tmp_path / "straight", *common, "trainer.max_steps=4"))
    assert [r.code for r in straight] == [0, 0], report(straight)
    split = tmp_path / "split"
    first = launch(tiny(shared_cache, split, *common, "trainer.max_steps=2"))
    assert [r.code for r in first] == [0, 0], report(first)
    second = launch(
        tiny(shared_cache, split, *common, "trainer.max_steps=4", "trainer.resume=true")
    )
    assert [r.code for r in second] == [0, 0], report(second)
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = load_checkpoint(split / "checkpoints" / "last.pt")
    assert b["progress"]["step"] == 4
    for name, tensor in a["model"].items():
        torch.testing.assert_close(tensor, b["model"][name], rtol=1e-5, atol=1e-6, msg=name)
    assert len(b["rng"]["ranks"]) == 2  # one state per rank
    fewer = launch(
        tiny(shared_cache, split, *common, "trainer.max_steps=5", "trainer.resume=true"),
        world=1,
    )
    assert [r.code for r in fewer] == [0], report(fewer)
