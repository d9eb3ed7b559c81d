"""Fault drill: kill a tiny training run again and again, resume it, and prove nothing is lost.

    python scripts/fault_drill.py [--faults 6] [--seed 0] [--run-dir DIR] [--steps 60]

Starts ``python -m seq2seq.cli.train`` on a tiny CPU config that validates and checkpoints
every 2 steps, waits a random moment, then sends SIGTERM or SIGKILL (alternating); some faults
are timed to land while a checkpoint is being written (a temporary file appears, or
``last.pt`` changes), one SIGKILL lands during start-up. After each fault it checks:

- the exit code: 143 after SIGTERM (with the resume command), -9 after SIGKILL;
- ``checkpoints/last.pt`` and ``best.pt`` load with ``load_checkpoint`` (weights_only);
- the checkpoint directory holds only those two and hidden ``.*.tmp`` files, which no
  ``*.pt`` pattern matches, and the next start resumes from exactly the step of ``last.pt``;
- the step count never goes backwards; SIGTERM loses no step, SIGKILL at most val_every;
- ``history.jsonl`` (the validation log) never goes backwards either.

Then it runs the training to completion and checks ``metrics.json``. One line per fault, then
``faults survived: N/N``; the exit code is non-zero if any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VAL_EVERY = 2
TINY = [
    "trainer.device=cpu",
    "trainer.num_threads=1",
    "data.train_limit=256",
    "data.eval_limit=16",
    "data.max_tokens=512",
    "data.vocab.size=300",
    "trainer.max_epochs=null",
    f"trainer.val_every={VAL_EVERY}",
    "trainer.log_every=1",
    "trainer.heatmaps=0",
    "trainer.patience=null",
    "decode.beam_size=2",
    "model.emb_size=16",
    "model.hidden_size=24",
]
# (signal, timing): the schedule repeats; --faults 3 already has a mid-checkpoint SIGKILL
SCHEDULE = [
    ("SIGTERM", "random"),
    ("SIGKILL", "checkpoint"),
    ("SIGTERM", "checkpoint"),
    ("SIGKILL", "random"),
    ("SIGTERM", "random"),
    ("SIGKILL", "startup"),
]
STEP_LINE = re.compile(r"\bstep (\d+) epoch \d+ loss")
RESUMED_LINE = re.compile(r"resumed from (\S+) at step (\d+)")


@dataclass
class Training:
    """One ``seq2seq-train`` process and its merged output, read by a thread."""

    proc: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)

    @classmethod
    def start(cls, overrides: list[str]) -> Training:
        env = os.environ | {"PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "seq2seq.cli.train", *overrides],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        run = cls(proc)
        threading.Thread(target=run._read, daemon=True).start()
        return run

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            match = STEP_LINE.search(line)
            if match:
                self.steps.append(int(match.group(1)))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_steps(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` training steps were logged by this process."""
        deadline = time.monotonic() + timeout
        while len(self.steps) < count and self.alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(self.steps) >= count

    def output(self) -> str:
        return "\n".join(self.lines)

    def tail(self, n: int = 15) -> str:
        return "\n".join("    | " + line for line in self.lines[-n:])


def is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def temp_files(ckpt_dir: Path) -> list[str]:
    try:
        return [n for n in os.listdir(ckpt_dir) if is_temp(n)]
    except FileNotFoundError:
        return []


def wait_for_checkpoint_write(ckpt_dir: Path, training: Training, timeout: float) -> str | None:
    """Return as soon as a checkpoint write is under way (temp file) or has just ended."""
    last = ckpt_dir / "last.pt"
    before = last.stat().st_mtime_ns if last.is_file() else None
    stale = set(temp_files(ckpt_dir))  # left by an earlier SIGKILL: not a write under way
    deadline = time.monotonic() + timeout
    while training.alive() and time.monotonic() < deadline:
        if set(temp_files(ckpt_dir)) - stale:
            return "during a checkpoint write"
        try:
            mtime = last.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime != before:
            return "right after a checkpoint write"
        time.sleep(0.0002)
    return None


def check_checkpoints(run_dir: Path, problems: list[str]) -> dict[str, int]:
    """Load every checkpoint safely; only last.pt, best.pt and hidden temp files may exist."""
    from seq2seq.checkpoint import load_checkpoint
    from seq2seq.errors import CheckpointError

    steps: dict[str, int] = {}
    ckpt_dir = run_dir / "checkpoints"
    if not ckpt_dir.is_dir():
        return steps
    for path in sorted(ckpt_dir.iterdir()):
        if path.name in ("last.pt", "best.pt"):
            try:
                steps[path.name] = int(load_checkpoint(path)["progress"]["step"])
            except CheckpointError as err:
                problems.append(f"{path.name} does not load: {err}")
        elif is_temp(path.name):
            if path.match("*.pt"):
                problems.append(f"temp file {path.name} looks like a checkpoint")
        else:
            problems.append(f"unexpected file in checkpoints/: {path.name}")
    if "best.pt" in steps and "last.pt" in steps and steps["best.pt"] > steps["last.pt"]:
        problems.append(f"best.pt step {steps['best.pt']} is after last.pt {steps['last.pt']}")
    return steps


def check_history(run_dir: Path, problems: list[str]) -> None:
    path = run_dir / "history.jsonl"
    if not path.is_file():
        return
    steps = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            steps.append(json.loads(line)["step"])
        except (ValueError, KeyError):
            problems.append(f"history.jsonl line {i} is not a complete record")
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        problems.append(f"history.jsonl steps go backwards: {steps}")


def check_resumed(training: Training, expected: int | None, problems: list[str]) -> None:
    """The new process resumed from exactly the checkpoint the last check loaded."""
    if expected is None:
        return
    found = RESUMED_LINE.search(training.output())
    if not found:
        if training.steps:  # it trained, so it must have said where it resumed from
            problems.append("the restarted run did not log 'resumed from ... at step N'")
        return
    if not found.group(1).endswith("last.pt") or int(found.group(2)) != expected:
        problems.append(
            f"resumed from {found.group(1)} at step {found.group(2)}, expected last.pt step {expected}"
        )


def stop(training: Training) -> None:
    if training.alive():
        training.proc.kill()
        training.proc.wait(timeout=60)


def run_drill(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    run_dir = Path(args.run_dir) if args.run_dir else Path(tempfile.mkdtemp(prefix="fault_drill_"))
    run_dir = run_dir.resolve()
    if run_dir.exists() and any(run_dir.iterdir()):
        print(f"error: --run-dir {run_dir} is not empty; give a new directory", file=sys.stderr)
        return 2
    overrides = [*TINY, f"trainer.max_steps={args.steps}", f"hydra.run.dir={run_dir}"]
    if args.cache_dir:
        overrides.append(f"data.cache_dir={Path(args.cache_dir).resolve()}")
    print(f"fault drill: {args.faults} faults, seed {args.seed}, run {run_dir}", flush=True)

    survived = 0
    ckpt_step: int | None = None  # step of last.pt after the previous check
    for i in range(args.faults):
        sig_name, timing = SCHEDULE[i % len(SCHEDULE)]
        if timing == "startup" and ckpt_step is None:
            timing = "random"  # a start-up kill proves most once there is something to lose
        sig = getattr(signal, sig_name)
        problems: list[str] = []
        resume = ["trainer.resume=true"] if i > 0 else []
        stale = set(temp_files(run_dir / "checkpoints"))
        training = Training.start(overrides + resume)
        where = ""
        try:
            if timing == "startup":
                time.sleep(rng.uniform(0.5, 3.0))
                where = "during start-up" if not training.steps else "just after start-up"
            else:
                wanted = rng.randint(1, 4)
                if not training.wait_steps(wanted, timeout=args.timeout):
                    problems.append(f"no training step {wanted} within {args.timeout:.0f}s")
                elif timing == "checkpoint":
                    landed = wait_for_checkpoint_write(
                        run_dir / "checkpoints", training, timeout=args.timeout
                    )
                    where = landed or "(no checkpoint write seen)"
                else:
                    time.sleep(rng.uniform(0.0, 0.3))
                    where = "mid-training"
            if not training.alive():
                problems.append(f"the run ended before the fault (exit {training.proc.returncode})")
            else:
                training.proc.send_signal(sig)
            code = training.proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            problems.append(f"no exit within {args.timeout:.0f}s of {sig_name}")
            code = None
        finally:
            stop(training)
        time.sleep(0.2)  # let the reader thread drain the pipe
        logged = max(training.steps, default=None)

        # exit code
        if sig_name == "SIGTERM":
            if code != 128 + signal.SIGTERM:
                problems.append(f"exit code {code} after SIGTERM, expected {128 + signal.SIGTERM}")
            elif "resume with: seq2seq-train" not in training.output():
                problems.append("no resume command after SIGTERM")
        elif code != -signal.SIGKILL and not problems:
            problems.append(f"exit code {code} after SIGKILL, expected {-signal.SIGKILL}")
        # what survived
        check_resumed(training, ckpt_step, problems)
        steps = check_checkpoints(run_dir, problems)
        check_history(run_dir, problems)
        new_step = steps.get("last.pt")
        if new_step is None and ckpt_step is not None:
            problems.append("checkpoints/last.pt disappeared")
        if new_step is not None and ckpt_step is not None and new_step < ckpt_step:
            problems.append(f"step went backwards: last.pt {ckpt_step} -> {new_step}")
        if logged is not None and new_step is not None:
            lost = logged - new_step
            allowed = 0 if sig_name == "SIGTERM" else VAL_EVERY
            if lost > allowed:
                problems.append(f"{lost} logged steps lost (step {logged}, last.pt {new_step})")
        leftovers = sorted(set(temp_files(run_dir / "checkpoints")) - stale)
        if sig_name == "SIGTERM" and leftovers:
            problems.append(f"temp files left after a clean stop: {leftovers}")
        if new_step is not None:
            ckpt_step = new_step

        status = "ok" if not problems else "FAILED: " + "; ".join(problems)
        if leftovers:
            status += f" (a SIGKILLed write left {leftovers[0]}: ignored, never loaded)"
        best = steps.get("best.pt")
        print(
            f"fault {i + 1}/{args.faults}: {sig_name} {where} at step {logged} -> exit {code}; "
            f"last.pt step {new_step}, best.pt step {best}: {status}",
            flush=True,
        )
        if problems:
            print(training.tail(), flush=True)
        else:
            survived += 1

    # the run must still finish as if nothing had happened
    problems = []
    training = Training.start([*overrides, "trainer.resume=true"])
    try:
        code = training.proc.wait(timeout=args.timeout * 4)
    except subprocess.TimeoutExpired:
        code = None
        problems.append("the final run did not finish")
    finally:
        stop(training)
    time.sleep(0.2)
    check_resumed(training, ckpt_step, problems)
    steps = check_checkpoints(run_dir, problems)
    check_history(run_dir, problems)
    metrics = {}
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        problems.append(f"metrics.json unreadable: {err}")
    if code != 0:
        problems.append(f"exit code {code}")
    if metrics and (metrics.get("status") != "finished" or metrics.get("steps") != args.steps):
        problems.append(
            f"metrics.json: status {metrics.get('status')}, steps {metrics.get('steps')}"
        )
    if steps.get("last.pt") != args.steps:
        problems.append(f"last.pt step {steps.get('last.pt')}, expected {args.steps}")
    status = "ok" if not problems else "FAILED: " + "; ".join(problems)
    print(
        f"final run: resumed at step {ckpt_step} -> exit {code}; steps {metrics.get('steps')}, "
        f"test BLEU {metrics.get('test_bleu')}: {status}",
        flush=True,
    )
    if problems:
        print(training.tail(), flush=True)
    print(f"faults survived: {survived}/{args.faults}", flush=True)
    return 0 if survived == args.faults and not problems else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", type=int, default=6, help="faults to inject (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault timings")
    parser.add_argument("--run-dir", help="a new run directory (default: a temporary one)")
    parser.add_argument("--steps", type=int, default=60, help="training budget (default 60)")
    parser.add_argument("--cache-dir", help="data.cache_dir (default: the config's)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per wait")
    args = parser.parse_args(argv)
    if args.faults < 1 or args.steps < 4 * args.faults + 8:
        parser.error(f"need --faults >= 1 and --steps >= {4 * args.faults + 8} (4 per fault + 8)")
    return run_drill(args)


if __name__ == "__main__":
    sys.exit(main())
