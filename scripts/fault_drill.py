"""Fault drill: hit a tiny training run with 24 faults, resume it each time, prove nothing is lost.

    python scripts/fault_drill.py [--faults 24] [--seed 0] [--kinds K1,K2,...]
                                  [--disk-full auto|tmpfs|simulated] [--cold]
                                  [trainer.max_steps=N] [hydra.run.dir=DIR] [data.cache_dir=DIR]

Trains a tiny CPU config that validates and checkpoints every 2 steps through seq2seq-train's
entry point, and resumes it (``trainer.resume=true``) after every fault. Each start runs in an
interpreter that imported torch, Hydra and seq2seq while the faults before ran (``--cold``: a
new ``python -m seq2seq.cli.train`` each time; start-up kills always get one). The schedule of
fault kinds is fixed, the moments (how many steps after a start, how far into a step or a
validation) are drawn from ``--seed``, and the budget (``trainer.max_steps``, by default what
the faults need) is spread over them; ``--kinds`` picks the kinds instead:

- ``sigterm-train``, ``sigkill-train``, ``sigint-train``: a random moment in training;
- ``sigkill-checkpoint``, ``sigterm-checkpoint``: while a checkpoint is written (its temporary
  file appears, or ``last.pt`` has just changed);
- ``sigterm-validation``, ``sigkill-validation``: during the validation that follows a step
  that is a multiple of val_every (after its ``step N`` line, before ``validation at step N``);
- ``sigkill-startup``: during start-up (imports, config, data);
- ``disk-full``: the checkpoint directory is a small tmpfs (``mount -t tmpfs``, where allowed)
  with less room than one more checkpoint, else the training runs through
  ``scripts/fault_drill_full_disk.py``, whose ``torch.save`` fails with ENOSPC: the training
  must exit 1 with one ``error:`` line and no traceback, the previous ``last.pt`` and
  ``best.pt`` intact (same bytes), and the next start resume from them;
- ``concurrent``: a second training into the run directory while the first holds it: the
  second must exit 1 with one ``error: ... is in use: pid <first>`` line, train nothing, write
  no metrics.json and change no file (hashes of all files but the first writer's); the first
  trains on meanwhile (paused with SIGSTOP, still holding its lock, should it reach its share
  of the budget first), writes its next checkpoint after the refusal, and is stopped with
  SIGTERM;
- ``sigint-data-prep``, ``sigterm-data-prep``: a start with a new ``data.cache_dir``, interrupted
  in its first data preparation (datasets building its tables, sentencepiece, the ids): one
  ``interrupted ... during seq2seq-train's start-up`` line, 130/143, no traceback or ``error:``,
  no metrics.json (an interrupt is not a failure), nothing trained;
- ``sigint-evaluate``, ``sigterm-evaluate``: ``seq2seq-evaluate`` of ``last.pt`` interrupted while
  it decodes: 130/143 with its one line, no traceback, no ``eval/`` record, staging or lock
  left, the checkpoints unchanged; the same command again writes the record;
- ``sigint-final-test``, ``sigterm-final-test`` (and ``sigkill-final-test``): during the final
  test decoding (after ``training ended at step N``, before metrics.json): 130/143 with the
  resume command and no metrics.json; the resume redoes the test without training.

After each fault it checks, and prints on one line:

- the exit code: 130 after SIGINT, 143 after SIGTERM (both with the resume command), -9 after
  SIGKILL, 1 for a refused second writer or a full disk;
- the new start resumed from exactly the step of ``last.pt`` (and took over a stale lock);
- ``checkpoints/last.pt`` and ``best.pt`` load with ``load_checkpoint`` (weights_only);
  ``best.pt`` is last.pt's best (step and BLEU) unless a SIGKILL fell between the two saves;
  ``checkpoints/`` holds nothing else but hidden leftovers of a kill, which no ``*.pt`` matches;
- no step lost beyond the last checkpoint: after SIGTERM/SIGINT last.pt is the last step
  logged; after SIGKILL it is at least the last validated step (every ended validation's
  checkpoint is there) and only the steps after it are lost;
- ``history.jsonl`` has no duplicate and no missing validation: its steps are exactly the
  multiples of val_every up to last.pt's step (plus the final step if the run ended there),
  also in last.pt itself; after a SIGKILL or a full disk one validation may be ahead of
  last.pt (the resume rewrites it, which the next fault checks);
- no metrics.json yet, and the run directory's lock released (a clean exit) or stale (a kill).

Then the run is finished (``trainer.resume=true``) and ``metrics.json`` must agree with the
checkpoints: status finished, steps = last.pt's step = ``trainer.max_steps``, best_step = best.pt's step,
val_bleu = best.pt's best BLEU, the history complete. Last line ``faults survived: N/N``; the
exit code is non-zero if any check failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's seq2seq, also for the checkpoint checks
FULL_DISK_LAUNCHER = REPO / "scripts" / "fault_drill_full_disk.py"
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
STEP_LINE = re.compile(r"\bstep (\d+) epoch \d+ loss")
VALIDATION_LINE = re.compile(r"validation at step (\d+):")
ENDED_LINE = re.compile(r"training ended at step (\d+)")
RESUMED_LINE = re.compile(r"resumed from (\S+) at step (\d+)")
LOCK_NAME = ".seq2seq.lock"
EXIT = {"SIGTERM": 128 + signal.SIGTERM, "SIGINT": 128 + signal.SIGINT, "SIGKILL": -signal.SIGKILL}
# steps a fault may use of the budget: a kill in training a step or two after its start (a
# SIGKILL's are trained again), a concurrent fault's first writer while the second one starts
RESERVE = {"train": 3, "checkpoint": 2, "validation": 2, "disk-full": 0, "concurrent": 10}
MAX_WANTED = 4  # a fault comes at most this many steps after the start it interrupts


@dataclass(frozen=True)
class Kind:
    name: str
    signal: str | None  # the signal sent (concurrent: to the first writer, at the end)
    moment: str  # train, checkpoint, validation, startup, disk-full, concurrent, final-test


KINDS = {
    kind.name: kind
    for kind in (
        Kind("sigterm-train", "SIGTERM", "train"),
        Kind("sigkill-train", "SIGKILL", "train"),
        Kind("sigint-train", "SIGINT", "train"),
        Kind("sigterm-checkpoint", "SIGTERM", "checkpoint"),
        Kind("sigkill-checkpoint", "SIGKILL", "checkpoint"),
        Kind("sigterm-validation", "SIGTERM", "validation"),
        Kind("sigkill-validation", "SIGKILL", "validation"),
        Kind("sigkill-startup", "SIGKILL", "startup"),
        Kind("disk-full", None, "disk-full"),
        Kind("concurrent", "SIGTERM", "concurrent"),
        Kind("sigint-final-test", "SIGINT", "final-test"),
        Kind("sigterm-final-test", "SIGTERM", "final-test"),
        Kind("sigkill-final-test", "SIGKILL", "final-test"),
        Kind("sigint-data-prep", "SIGINT", "data-prep"),
        Kind("sigterm-data-prep", "SIGTERM", "data-prep"),
        Kind("sigint-evaluate", "SIGINT", "evaluate"),
        Kind("sigterm-evaluate", "SIGTERM", "evaluate"),
    )
}
# faults in training, repeated as often as --faults asks; the final-test ones come last
CYCLE = [
    "sigterm-train",
    "sigkill-checkpoint",
    "sigterm-validation",
    "sigint-data-prep",
    "sigkill-train",
    "sigterm-checkpoint",
    "sigint-evaluate",
    "sigkill-startup",
    "sigkill-validation",
    "concurrent",
    "sigint-train",
    "sigterm-data-prep",
    "disk-full",
    "sigkill-checkpoint",
    "sigterm-train",
    "sigterm-evaluate",
    "sigkill-validation",
    "sigterm-checkpoint",
    "sigkill-startup",
    "sigkill-train",
    "sigterm-validation",
    "sigkill-checkpoint",
]
DEFAULT_FAULTS = len(CYCLE) + 2  # every kind of the cycle once, then the final-test ones
DATA_PREP_LINE = "loading multi30k from the local files"  # the first data preparation began
STARTUP_INTERRUPT = "during seq2seq-train's start-up"
EVAL_SENTENCES = 400  # decoded one at a time: seconds of decoding to interrupt
TAIL = ["sigint-final-test", "sigterm-final-test"]
CONSUMING = ("train", "checkpoint", "validation")  # they wait for steps to train


def schedule(faults: int) -> list[Kind]:
    tail = TAIL if faults >= 4 else TAIL[:1] if faults >= 2 else []
    body = [CYCLE[i % len(CYCLE)] for i in range(faults - len(tail))]
    return [KINDS[name] for name in body + tail]


def reserve(kinds: list[Kind]) -> int:
    return sum(RESERVE.get(k.moment, 0) for k in kinds)


def min_steps(kinds: list[Kind]) -> int:
    return reserve(kinds) + 2 * VAL_EVERY


def default_steps(kinds: list[Kind]) -> int:
    return max(12, min_steps(kinds))


# --------------------------------------------------------------------------- one training


@dataclass
class Training:
    """One training process and its merged output, read by a thread."""

    proc: subprocess.Popen
    lines: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, line)
    steps: list[int] = field(default_factory=list)
    validated: list[int] = field(default_factory=list)
    ended_at: int | None = None
    reader: threading.Thread | None = None
    began: float = field(default_factory=time.monotonic)

    @classmethod
    def start(
        cls,
        overrides: list[str],
        launcher: list[str] | None = None,
        warm: subprocess.Popen | None = None,
    ) -> Training:
        """``python -m seq2seq.cli.train`` (or ``launcher``) with ``overrides``; or a ``warm``
        interpreter from :class:`Spares` runs the same entry point with them."""
        if warm is not None:
            proc = warm
            proc.stdin.write(json.dumps(overrides) + "\n")
            proc.stdin.close()
        else:
            command = launcher or [sys.executable, "-m", "seq2seq.cli.train"]
            proc = popen([*command, *overrides])
        run = cls(proc)
        run.reader = threading.Thread(target=run._read, daemon=True)
        run.reader.start()
        return run

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append((time.monotonic(), line))
            if match := STEP_LINE.search(line):
                self.steps.append(int(match.group(1)))
            elif match := VALIDATION_LINE.search(line):
                self.validated.append(int(match.group(1)))
            elif match := ENDED_LINE.search(line):
                self.ended_at = int(match.group(1))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, condition: Callable[[], bool], timeout: float, poll: float = 0.005) -> bool:
        """Wait until ``condition()`` holds, the process ends or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while not condition():
            if not self.alive() or time.monotonic() > deadline:
                return condition()
            time.sleep(poll)
        return True

    def finish(self, timeout: float) -> int | None:
        """The exit code (None if it had to be killed after ``timeout``); output drained."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
            self.proc.kill()
            self.proc.wait(timeout=60)
        if self.reader is not None:
            self.reader.join(timeout=10)
        return code

    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def time_of(self, pattern: str) -> float | None:
        return next((t for t, line in self.lines if pattern in line), None)

    def startup_s(self) -> float | None:
        """Seconds from the start to the first training step (or the resumed run's end)."""
        first = next((t for t, line in self.lines if STEP_LINE.search(line)), None)
        first = first or self.time_of("training ended at step")
        return None if first is None else first - self.began

    def error_lines(self) -> list[str]:
        return [line for _, line in self.lines if line.startswith("error:")]

    def tail(self, n: int = 15) -> str:
        return "\n".join("    | " + line for _, line in self.lines[-n:])


def popen(command: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        **kwargs,
    )


# a spare interpreter: the imports of a start done ahead, then seq2seq-train's own entry point
# (its checks, Hydra, the training) with the overrides it is sent on stdin
WARM = """\
import json, os, sys
sys.path.insert(0, sys.argv[1])
import torch, torch._dynamo  # torch.optim imports _dynamo on the first optimizer
import seq2seq.cli.train as cli, seq2seq.training.recipe
try:
    os.write(int(sys.argv[2]), b"warm")
except OSError:  # taken before it was warm: nobody listens
    pass
os.close(int(sys.argv[2]))
request = sys.stdin.readline()
if request:
    sys.argv = ["seq2seq-train", *json.loads(request)]
    cli.main()
"""


@dataclass
class Spare:
    proc: subprocess.Popen
    fd: int  # a pipe it writes to once its imports are done

    def warm(self) -> bool:
        return bool(select.select([self.fd], [], [], 0)[0])


class Spares:
    """Interpreters kept ready for the next starts (``--cold``: none): they import torch,
    Hydra and seq2seq while the faults before run, one at a time (imports compete with the
    training for the CPU), which cuts most of the start-up time a fault costs on a small
    machine. Start-up kills always hit a cold start."""

    def __init__(self, enabled: bool, keep: int = 2) -> None:
        self.enabled, self.keep = enabled, keep
        self.pool: list[Spare] = []
        self.fill()

    def spawn(self) -> None:
        read, write = os.pipe()
        command = [sys.executable, "-c", WARM, str(REPO), str(write)]
        proc = popen(command, stdin=subprocess.PIPE, pass_fds=(write,))
        os.close(write)
        self.pool.append(Spare(proc, read))

    def fill(self) -> None:
        """Start one more spare if there are fewer than ``keep`` and none is importing."""
        for spare in [s for s in self.pool if s.proc.poll() is not None]:
            self.pool.remove(spare)
            self.discard(spare)
        if self.enabled and len(self.pool) < self.keep and all(s.warm() for s in self.pool):
            self.spawn()

    def take(self, again: bool = True) -> subprocess.Popen | None:
        """A warm interpreter (else the oldest); ``again``: ready another one for later."""
        if not self.enabled:
            return None
        self.fill()
        if not self.pool:
            self.spawn()
        spare = next((s for s in self.pool if s.warm()), self.pool[0])
        self.pool.remove(spare)
        os.close(spare.fd)
        if again:
            self.fill()
        return spare.proc

    @staticmethod
    def discard(spare: Spare) -> None:
        if spare.proc.poll() is None:  # waiting for a request: nothing of a run to lose
            spare.proc.kill()
        spare.proc.wait()
        spare.proc.stdin.close()
        spare.proc.stdout.close()
        os.close(spare.fd)

    def close(self) -> None:
        for spare in self.pool:
            self.discard(spare)
        self.pool = []


# --------------------------------------------------------------------------- files


def is_leftover(name: str) -> bool:
    """A hidden file a kill may leave (a checkpoint's .tmp, a write probe): never loaded."""
    return name.startswith(".")


def temp_files(ckpt_dir: Path) -> list[str]:
    try:
        return [n for n in os.listdir(ckpt_dir) if n.startswith(".") and n.endswith(".tmp")]
    except FileNotFoundError:
        return []


def mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def tree(run_dir: Path, skip: tuple[str, ...]) -> dict[str, str]:
    """Content hashes of the files below ``run_dir`` but those under ``skip`` and hidden temp
    files (what a running training writes)."""
    hashes = {}
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir).as_posix()
        if rel.split("/")[0] in skip or path.name.endswith(".tmp") or not path.is_file():
            continue
        try:
            hashes[rel] = sha(path)
        except FileNotFoundError:
            pass
    return hashes


def wait_for_checkpoint_write(ckpt_dir: Path, training: Training, timeout: float) -> str | None:
    """Return as soon as a checkpoint write is under way (temp file) or has just ended."""
    last = ckpt_dir / "last.pt"
    before = mtime(last)
    stale = set(temp_files(ckpt_dir))  # left by an earlier SIGKILL: not a write under way
    start = len(training.steps)
    # a checkpoint follows the validation after a step that is a multiple of val_every
    due = lambda: any(s % VAL_EVERY == 0 for s in training.steps[max(0, start - 1) :])  # noqa: E731
    if not training.wait_for(due, timeout):
        return None
    deadline = time.monotonic() + timeout
    while training.alive() and time.monotonic() < deadline:
        fresh = set(temp_files(ckpt_dir)) - stale
        if fresh:
            return f"during the write of {min(fresh)[1:].split('.pt')[0]}.pt"
        if mtime(last) != before:
            return "right after the write of last.pt"
        time.sleep(0.0002)
    return None


# --------------------------------------------------------------------------- checks


def load_progress(run_dir: Path, problems: list[str]) -> dict[str, dict]:
    """Each checkpoint's progress, loaded safely; only last.pt, best.pt and hidden leftovers
    of a kill may be in checkpoints/."""
    from seq2seq.checkpoint import load_checkpoint
    from seq2seq.errors import CheckpointError

    found: dict[str, dict] = {}
    ckpt_dir = run_dir / "checkpoints"
    if not ckpt_dir.is_dir():
        return found
    for path in sorted(ckpt_dir.iterdir()):
        if path.name in ("last.pt", "best.pt"):
            try:
                found[path.name] = dict(load_checkpoint(path)["progress"])
            except CheckpointError as err:
                problems.append(f"{path.name} does not load: {err}")
        elif is_leftover(path.name):
            if path.match("*.pt"):
                problems.append(f"leftover {path.name} looks like a checkpoint")
        else:
            problems.append(f"unexpected file in checkpoints/: {path.name}")
    return found


def expected_history(step: int, ended: bool) -> list[int]:
    """The validations of a run at ``step``: every val_every steps, and the final step."""
    steps = list(range(VAL_EVERY, step + 1, VAL_EVERY))
    if ended and step > 0 and step % VAL_EVERY:
        steps.append(step)
    return steps


def show_steps(steps: list[int]) -> str:
    """``2..56 x28 +57``: every val_every steps, and a final one."""
    if not steps:
        return "none"
    regular = steps[:-1] if len(steps) > 1 and steps[-1] % VAL_EVERY else steps
    extra = f" +{steps[-1]}" if regular is not steps else ""
    if regular == list(range(VAL_EVERY, regular[-1] + 1, VAL_EVERY)) and len(regular) > 2:
        return f"{regular[0]}..{regular[-1]} x{len(regular)}{extra}"
    return ",".join(map(str, steps))


def history_steps(run_dir: Path, problems: list[str]) -> list[int]:
    path = run_dir / "history.jsonl"
    if not path.is_file():
        return []
    steps = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            steps.append(int(json.loads(line)["step"]))
        except (ValueError, KeyError, TypeError):
            problems.append(f"history.jsonl line {i} is not a complete record")
    return steps


@dataclass
class State:
    """What the drill knows of the run between faults."""

    run_dir: Path
    overrides: list[str]
    steps: int
    ckpt_step: int | None = None  # step of last.pt after the previous check
    ended: bool = False  # last.pt is of a run whose training ended (killed in its final test)
    stale_lock: bool = False  # a kill left the lock: the next start must take it over


@dataclass
class Outcome:
    """One fault: how it went (``where``), what was checked, what failed."""

    training: Training | None = None
    code: int | None = None
    where: str = ""
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)

    def timing(self) -> str:
        took = f"{time.monotonic() - self.began:.0f}s"
        startup = self.training.startup_s() if self.training else None
        return took if startup is None else f"{took}, start-up {startup:.0f}s"


def check_run(
    state: State, out: Outcome, *, signal_name: str | None, expect: int, lost: str
) -> None:
    """The checks after every fault; ``lost``: ``none`` (a clean stop), ``since-checkpoint``
    (SIGKILL) or ``unsaved`` (a failed save: last.pt must be the previous one)."""
    training, problems, checks = out.training, out.problems, out.checks
    run_dir, prev = state.run_dir, state.ckpt_step
    # exit code, and the resume command after an interrupt
    if out.code != expect:
        problems.append(f"exit code {out.code}, expected {expect}")
    elif signal_name in ("SIGTERM", "SIGINT") and "resume with: seq2seq-train" not in (
        training.output()
    ):
        problems.append(f"no resume command after {signal_name}")
    checks.append(f"exit {out.code}")
    # the start resumed from exactly the checkpoint the last check loaded
    found = RESUMED_LINE.search(training.output())
    if prev is not None and found:
        if not found.group(1).endswith("last.pt") or int(found.group(2)) != prev:
            problems.append(
                f"resumed from {found.group(1)} at step {found.group(2)}, expected last.pt {prev}"
            )
        checks.append(f"resumed at {found.group(2)}")
    elif prev is not None and training.steps:
        problems.append("trained without logging 'resumed from ... at step N'")
    if state.ended and training.steps:
        problems.append(f"a run whose training had ended trained on (steps {training.steps})")
    if state.stale_lock and (found or training.steps):
        if "taking over the stale lock" not in training.output():
            problems.append("the stale lock was not taken over with a warning")
        else:
            checks.append("stale lock taken over")
    # checkpoints load with weights_only and agree with each other
    progress = load_progress(run_dir, problems)
    last, best = progress.get("last.pt"), progress.get("best.pt")
    logged = max(training.steps, default=prev)
    step = last["step"] if last else None
    if last is None:
        if prev is not None:
            problems.append("checkpoints/last.pt disappeared")
    else:
        checks.append(
            f"last.pt {step}"
            + (f" & best.pt {best['step']}" if best else "")
            + " load weights_only"
        )
        if prev is not None and step < prev:
            problems.append(f"step went backwards: last.pt {prev} -> {step}")
    if last and best:
        if best["step"] > step:
            if lost == "since-checkpoint" and logged is not None and best["step"] <= logged:
                out.notes.append(f"best.pt {best['step']} saved, then killed before last.pt")
            else:
                problems.append(f"best.pt step {best['step']} is after last.pt {step}")
        elif (best["step"], best["best_bleu"]) != (last["best_step"], last["best_bleu"]):
            problems.append(
                f"best.pt (step {best['step']}, BLEU {best['best_bleu']}) is not last.pt's best "
                f"(step {last['best_step']}, BLEU {last['best_bleu']})"
            )
    elif last and last["best_step"] and not best:
        problems.append(f"no best.pt, but last.pt's best is step {last['best_step']}")
    # no step lost beyond the last checkpoint
    if last is not None and logged is not None:
        validated = max(training.validated, default=prev or 0)
        if lost == "none" and step != logged:
            problems.append(f"{logged - step} logged steps lost (step {logged}, last.pt {step})")
        elif lost == "since-checkpoint" and not validated <= step <= logged:
            problems.append(
                f"last.pt step {step} is not between the last validation ({validated}) and the "
                f"last logged step ({logged})"
            )
        elif lost == "unsaved" and step != prev:
            problems.append(f"last.pt step {step} is not the previous checkpoint's {prev}")
        gone = (
            "none"
            if logged == step
            else f"{step + 1}" + (f"-{logged}" if logged > step + 1 else "")
        )
        checks.append(f"steps lost: {gone}" + ("" if gone == "none" else " (after last.pt)"))
    # the validation history: every validation once, none missing
    if last is not None:
        expected = expected_history(step, bool(last.get("ended")))
        saved = [int(entry["step"]) for entry in last.get("history", [])]
        if saved != expected:
            problems.append(f"last.pt's history {saved}, expected {expected}")
        written = history_steps(run_dir, problems)
        ahead = written[len(expected) :]
        if written == expected:
            checks.append(f"history {show_steps(expected)}")
        elif (
            written[: len(expected)] == expected
            and lost in ("since-checkpoint", "unsaved")
            and len(ahead) == 1
            and step < ahead[0] <= (logged or 0)
        ):
            checks.append(f"history {show_steps(expected)} (+{ahead[0]} ahead of last.pt)")
        else:
            dup = sorted({s for s in written if written.count(s) > 1})
            missing = sorted(set(expected) - set(written))
            problems.append(
                f"history.jsonl {written}, expected {expected}"
                + (f" (duplicates {dup})" if dup else "")
                + (f" (missing {missing})" if missing else "")
            )
    # nothing final yet; the lock released after a clean exit, stale after a kill
    if (run_dir / "metrics.json").exists():
        problems.append("metrics.json written by an interrupted run")
    else:
        checks.append("no metrics.json")
    lock = run_dir / LOCK_NAME
    if expect == EXIT["SIGKILL"]:
        state.stale_lock = lock.is_file()
        checks.append("stale lock" if state.stale_lock else "no lock yet")
    elif lock.is_file():
        problems.append(f"{LOCK_NAME} left behind by a clean exit")
        state.stale_lock = True
    else:
        checks.append("lock released")
        state.stale_lock = False
    if last is not None:
        state.ckpt_step = step
        state.ended = bool(last.get("ended"))


# --------------------------------------------------------------------------- the faults


class Drill:
    def __init__(self, args: argparse.Namespace, state: State, kinds: list[Kind]) -> None:
        self.args, self.state, self.kinds = args, state, kinds
        self.rng = random.Random(args.seed)
        self.full_disk, self.full_disk_why = probe_full_disk(args.disk_full)
        self.spares = Spares(enabled=not args.cold)
        self.step_s: list[float] = []  # durations of training steps seen (no validation in them)

    def start(self, cold: bool = False, **kwargs) -> Training:
        resume = ["trainer.resume=true"] if self.state.ckpt_step is not None else []
        warm = None if cold or "launcher" in kwargs else self.spares.take()
        return Training.start(self.state.overrides + resume, warm=warm, **kwargs)

    def learn_step_time(self, training: Training) -> None:
        timed = [
            (t, int(m.group(1))) for t, line in training.lines if (m := STEP_LINE.search(line))
        ]
        for (t0, s0), (t1, s1) in zip(timed, timed[1:], strict=False):
            if s1 == s0 + 1 and s0 % VAL_EVERY:  # no validation between the two lines
                self.step_s.append(t1 - t0)

    def step_time(self) -> float:
        return sorted(self.step_s)[len(self.step_s) // 2] if self.step_s else 0.25

    def wanted_steps(self, index: int) -> int:
        """Steps to let the start train before this fault: a seeded draw, spread so the budget
        lasts for the faults ahead (a concurrent fault's first writer trains on its own)."""
        u = self.rng.random()
        ahead = self.kinds[index:]
        consuming = max(1, sum(k.moment in CONSUMING for k in ahead))
        free = self.state.steps - (self.state.ckpt_step or 0) - reserve(ahead)
        high = max(1, min(MAX_WANTED, 1 + free // consuming))
        return 1 + int(u * high)

    def run(self, index: int, kind: Kind) -> Outcome:
        handler = {
            "startup": self.startup,
            "disk-full": self.disk_full,
            "concurrent": self.concurrent,
            "final-test": self.final_test,
            "data-prep": self.data_prep,
            "evaluate": self.evaluate,
        }.get(kind.moment, self.in_training)
        out = Outcome()
        self.leftovers = set(temp_files(self.state.run_dir / "checkpoints"))
        try:
            handler(index, kind, out)
        finally:
            if out.training is not None and out.training.alive():
                out.training.proc.kill()
                out.training.finish(timeout=60)
            if out.training is not None:
                self.learn_step_time(out.training)
            self.spares.fill()
        return out

    def signal(self, out: Outcome, kind: Kind) -> None:
        """Send the kind's signal; the exit code, once the output is drained, into ``out``."""
        training = out.training
        if not training.alive():
            out.problems.append(f"the run ended before the fault (exit {training.proc.returncode})")
        else:
            training.proc.send_signal(getattr(signal, kind.signal))
        out.code = training.finish(timeout=self.args.timeout)
        if out.code is None:
            out.problems.append(f"no exit within {self.args.timeout:.0f}s of {kind.signal}")

    def in_training(self, index: int, kind: Kind, out: Outcome) -> None:
        wanted = self.wanted_steps(index)
        pause = self.rng.random()
        out.training = training = self.start()
        timeout = self.args.timeout
        ckpt_dir = self.state.run_dir / "checkpoints"
        if not training.wait_for(lambda: len(training.steps) >= wanted, timeout):
            out.problems.append(f"no training step {wanted} within {timeout:.0f}s")
        elif kind.moment == "checkpoint":
            out.where = wait_for_checkpoint_write(ckpt_dir, training, timeout) or ""
            if not out.where and training.alive():
                out.problems.append(f"missed: no checkpoint write within {timeout:.0f}s")
        elif kind.moment == "validation":
            first = training.steps[wanted - 1]

            def due() -> int | None:
                return next(
                    (
                        s
                        for s in training.steps
                        if s >= first and s % VAL_EVERY == 0 and s not in training.validated
                    ),
                    None,
                )

            training.wait_for(lambda: due() is not None, timeout)
            target = due()
            before, stale = mtime(ckpt_dir / "last.pt"), set(temp_files(ckpt_dir))
            time.sleep(pause * 0.03)  # 0-30 ms into a validation of some 300 ms and more
            sent = time.monotonic()
            writing = set(temp_files(ckpt_dir)) - stale or mtime(ckpt_dir / "last.pt") != before
            self.signal(out, kind)
            ended = training.time_of(f"validation at step {target}:")
            if target is None:
                out.problems.append("no validation began")
            elif ended is not None and ended < sent:
                out.problems.append(f"missed: the validation of step {target} had ended")
            phase = "its checkpoint write" if writing else "decoding"
            out.where = f"during the validation of step {target} ({phase})"
            self.finish_training_fault(kind, out)
            return
        else:
            time.sleep(pause * self.step_time())  # a random moment of the next step
            done = training.steps[-1]
            validating = done % VAL_EVERY == 0 and done not in training.validated
            out.where = f"in the validation of step {done}" if validating else f"in step {done + 1}"
        self.signal(out, kind)
        self.finish_training_fault(kind, out)

    def finish_training_fault(self, kind: Kind, out: Outcome) -> None:
        killed = kind.signal == "SIGKILL"
        leftovers = sorted(set(temp_files(self.state.run_dir / "checkpoints")) - self.leftovers)
        if leftovers and killed:
            out.notes.append(f"the killed write left {leftovers[0]}: ignored, never loaded")
        elif leftovers:
            out.problems.append(f"temp files left after a clean stop: {leftovers}")
        check_run(
            self.state,
            out,
            signal_name=kind.signal,
            expect=EXIT[kind.signal],
            lost="since-checkpoint" if killed else "none",
        )

    def startup(self, index: int, kind: Kind, out: Outcome) -> None:  # noqa: ARG002
        delay = self.rng.uniform(0.5, 3.0)
        out.training = training = self.start(cold=True)  # the real start-up, imports included
        time.sleep(delay)
        out.where = "during start-up" if not training.steps else "just after start-up"
        self.signal(out, kind)
        check_run(
            self.state,
            out,
            signal_name=kind.signal,
            expect=EXIT["SIGKILL"],
            lost="since-checkpoint",
        )

    def data_prep(self, index: int, kind: Kind, out: Outcome) -> None:
        """A start with a new data.cache_dir (its first data preparation: datasets builds its
        Arrow tables, sentencepiece trains, the ids are cached), interrupted in it: one
        ``interrupted ... during seq2seq-train's start-up`` line, 130/143, no traceback, no
        ``error:``, nothing recorded (no metrics.json status failed), nothing trained."""
        pause = self.rng.uniform(0.0, 0.3)
        cache = self.state.run_dir.parent / f"{self.state.run_dir.name}_prep{index}"
        out.training = training = Training.start(
            self.state.overrides
            + (["trainer.resume=true"] if self.state.ckpt_step is not None else [])
            + [f"data.cache_dir={cache}"],
        )  # a new interpreter: a warm one's loggers of the data step, made before Hydra's
        # logging set-up, stay quiet, and the drill reads their lines
        if not training.wait_for(lambda: DATA_PREP_LINE in training.output(), self.args.timeout):
            out.problems.append(f"no {DATA_PREP_LINE!r} line within {self.args.timeout:.0f}s")
        time.sleep(pause)
        self.signal(out, kind)
        text = training.output()
        phase = (
            "after setup"
            if "parameters on" in text
            else "tokenizing"
            if "sentencepiece model" in text
            else "reading the corpus"
        )
        out.where = f"in the first data preparation ({phase}, {pause * 1000:.0f} ms in)"
        if phase == "after setup":
            out.problems.append("missed: the data preparation had ended")
        said = [line for _, line in training.lines if line.startswith("interrupted (signal")]
        if not said or STARTUP_INTERRUPT not in said[-1]:
            out.problems.append(f"no '{STARTUP_INTERRUPT}' line: {text[-300:]!r}")
        else:
            out.checks.append("one interrupted line")
        if "Traceback" in text or training.error_lines():
            out.problems.append("a traceback or an error: line for an interrupt")
        if (self.state.run_dir / "metrics.json").exists():
            out.problems.append("metrics.json written: the interrupt was recorded as a failure")
        check_run(self.state, out, signal_name=None, expect=EXIT[kind.signal], lost="none")
        shutil.rmtree(cache, ignore_errors=True)

    def evaluate(self, index: int, kind: Kind, out: Outcome) -> None:  # noqa: ARG002
        """seq2seq-evaluate of the run's last.pt interrupted while it decodes: 130/143 with one
        line, no traceback, no record (no eval/drill, no staging or lock left), the
        checkpoints unchanged; the same command again then writes the record."""
        run_dir, timeout = self.state.run_dir, self.args.timeout
        pause = self.rng.uniform(0.0, 0.2)
        src = run_dir.parent / f"{run_dir.name}_eval.de"
        sentences = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.", "Eine Frau lacht."]
        src.write_text("".join(sentences[i % 3] + "\n" for i in range(EVAL_SENTENCES)), "utf-8")
        command = [
            sys.executable,
            "-m",
            "seq2seq.cli.evaluate",
            f"run_dir={run_dir}",
            "checkpoint=last",
            "device=cpu",
            f"src_file={src}",
            "name=drill",
            "decode.batch_size=1",
            "decode.progress=true",
        ]
        before = tree(run_dir / "checkpoints", ())
        out.training = training = Training.start([], launcher=command)
        if not training.wait_for(lambda: "decoding" in training.output(), timeout):
            out.problems.append(f"no decoding began within {timeout:.0f}s")
        time.sleep(pause)
        self.signal(out, kind)
        out.where = f"while decoding {EVAL_SENTENCES} sentences ({pause * 1000:.0f} ms in)"
        text = training.output()
        expected = (
            f"interrupted (signal {kind.signal}) during seq2seq-evaluate: no record was written; "
            "run the same command again"
        )
        if out.code != EXIT[kind.signal]:
            out.problems.append(f"exit code {out.code}, expected {EXIT[kind.signal]}")
        out.checks.append(f"exit {out.code}")
        if out.code == 0:
            out.problems.append("missed: the evaluation had ended")
        if expected not in text:
            out.problems.append(f"not the one interrupted line: {text[-300:]!r}")
        else:
            out.checks.append("one interrupted line")
        if "Traceback" in text or training.error_lines():
            out.problems.append("a traceback or an error: line for an interrupt")
        eval_dir = run_dir / "eval"
        left = sorted(p.name for p in eval_dir.iterdir()) if eval_dir.is_dir() else []
        if left:
            out.problems.append(f"eval/ holds {left} after the interrupt")
        else:
            out.checks.append("no record, no staging, no lock")
        if tree(run_dir / "checkpoints", ()) != before:
            out.problems.append("the checkpoints changed")
        again = Training.start([], launcher=command)
        code = again.finish(timeout=timeout)
        record = eval_dir / "drill" / "metrics.json"
        if code != 0 or not record.is_file():
            out.problems.append(f"the same command again: exit {code}, record {record.is_file()}")
        else:
            written = json.loads(record.read_text(encoding="utf-8")).get("sentences")
            out.checks.append(f"the same command again: exit 0, {written} sentences recorded")
        shutil.rmtree(eval_dir, ignore_errors=True)
        src.unlink(missing_ok=True)

    def final_test(self, index: int, kind: Kind, out: Outcome) -> None:  # noqa: ARG002
        pause = self.rng.uniform(0.02, 0.15)
        out.training = training = self.start()
        # it trains what is left of the budget first
        budget = self.args.timeout + 2 * (self.state.steps - (self.state.ckpt_step or 0))
        if not training.wait_for(lambda: training.ended_at is not None, budget):
            out.problems.append(f"no 'training ended at step' line within {budget:.0f}s")
        time.sleep(pause)
        if (self.state.run_dir / "metrics.json").exists():
            out.problems.append("metrics.json was written before the fault")
        self.signal(out, kind)
        out.where = f"in the final test after step {training.ended_at}"
        if "test BLEU" in training.output():
            out.problems.append("missed: the final test had ended")
        if kind.signal != "SIGKILL" and "in the final test" not in training.output():
            out.problems.append("the interrupt does not say it came in the final test")
        check_run(
            self.state,
            out,
            signal_name=kind.signal,
            expect=EXIT[kind.signal],
            lost="none" if kind.signal != "SIGKILL" else "since-checkpoint",
        )
        if self.state.ckpt_step != self.state.steps or not self.state.ended:
            out.problems.append(
                f"last.pt is not the ended run's (step {self.state.ckpt_step}, "
                f"ended {self.state.ended})"
            )

    def concurrent(self, index: int, kind: Kind, out: Outcome) -> None:  # noqa: ARG002
        run_dir, timeout = self.state.run_dir, self.args.timeout
        lock = run_dir / LOCK_NAME
        out.training = first = self.start()

        def holds() -> bool:
            try:
                return json.loads(lock.read_text(encoding="utf-8")).get("pid") == first.proc.pid
            except (OSError, ValueError, AttributeError):
                return False

        if not first.wait_for(holds, timeout, poll=0.01):
            out.problems.append(f"the first writer took no lock within {timeout:.0f}s")
            self.signal(out, kind)
            return
        # what the first writer does not write while it runs: all of it must stay as it is
        skip = ("checkpoints", "history.jsonl", ".history.jsonl.tmp", "tb", "train.log")
        if not (run_dir / "vocab").is_dir():
            skip += ("vocab",)  # a new run: the first writer copies it in as it sets up
        before = tree(run_dir, skip)
        second = Training.start(
            self.state.overrides + ["trainer.resume=true"], warm=self.spares.take()
        )
        # the first trains on meanwhile, up to its share of the budget: there it is paused
        # (SIGSTOP: alive, holding its lock) until the second has exited
        share = (self.state.ckpt_step or 0) + RESERVE["concurrent"] - VAL_EVERY
        paused = None
        deadline = time.monotonic() + timeout
        try:
            while second.alive() and time.monotonic() < deadline:
                if paused is None and first.alive() and first.steps and first.steps[-1] >= share:
                    first.proc.send_signal(signal.SIGSTOP)
                    paused = first.steps[-1]
                time.sleep(0.01)
            code = second.finish(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if paused is not None:
                first.proc.send_signal(signal.SIGCONT)
        refused_in = time.monotonic() - second.began
        if paused is not None:
            out.notes.append(f"the 1st was paused at step {paused} until the 2nd had exited")
        errors = second.error_lines()
        if code != 1:
            out.problems.append(f"the second writer exited {code}, expected 1")
        if len(errors) != 1 or f"is in use: pid {first.proc.pid}" not in errors[0]:
            out.problems.append(f"the second writer said {errors or second.output()[-300:]!r}")
        if "Traceback" in second.output():
            out.problems.append("the second writer printed a traceback")
        if second.steps:
            out.problems.append(f"the second writer trained (steps {second.steps})")
        if (run_dir / "metrics.json").exists():
            out.problems.append("the second writer wrote metrics.json")
        after = tree(run_dir, skip)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        if changed:
            out.problems.append(f"the second writer changed {changed}")
        if not first.alive():
            out.problems.append(f"the first writer ended meanwhile (exit {first.proc.returncode})")
        said = errors[0].replace(str(run_dir), "<run>") if errors else "nothing"
        said = said if len(said) <= 80 else said[:77] + "..."
        out.checks.append(
            f"2nd writer exit {code} in {refused_in:.0f}s {said!r}, {len(before)} files unchanged"
        )
        if out.problems:
            self.signal(out, kind)
            return
        # the first one trains on: its next checkpoint, then a clean stop
        was = mtime(run_dir / "checkpoints" / "last.pt")
        if not first.wait_for(lambda: mtime(run_dir / "checkpoints" / "last.pt") != was, timeout):
            out.problems.append("the first writer wrote no checkpoint after the refusal")
        self.signal(out, kind)
        out.where = (
            f"a 2nd writer started while the 1st trained (from step {min(first.steps, default=None)}"
            f"); then {kind.signal} to the 1st at step {max(first.steps, default=None)}"
        )
        check_run(self.state, out, signal_name=kind.signal, expect=EXIT[kind.signal], lost="none")

    def disk_full(self, index: int, kind: Kind, out: Outcome) -> None:  # noqa: ARG002
        run_dir, timeout = self.state.run_dir, self.args.timeout
        ckpt_dir = run_dir / "checkpoints"
        kept = {name: sha(ckpt_dir / name) for name in ("last.pt", "best.pt")}
        if self.full_disk == "tmpfs":
            with small_tmpfs(ckpt_dir) as size:
                out.training = training = self.start()
                out.code = training.finish(timeout=timeout)
            out.where = f"checkpoints/ on a {size // 1024} KiB tmpfs"
        else:
            launcher = [sys.executable, str(FULL_DISK_LAUNCHER)]
            out.training = training = self.start(launcher=launcher)
            out.code = training.finish(timeout=timeout)
            out.where = "simulated ENOSPC from the first checkpoint save"
        errors = training.error_lines()
        if len(errors) != 1:
            out.problems.append(f"{len(errors)} 'error:' lines, expected 1")
        if "Traceback" in training.output():
            out.problems.append("a traceback instead of one error line")
        if not any(s % VAL_EVERY == 0 for s in training.steps):
            out.problems.append("it never reached a checkpoint")
        out.checks.append(f"said {errors[0][:90]!r}" if errors else "said no error: line")
        changed = [n for n, digest in kept.items() if sha(ckpt_dir / n) != digest]
        if changed:
            out.problems.append(f"the full disk changed {changed}")
        else:
            out.checks.append("last.pt & best.pt intact (same bytes)")
        check_run(self.state, out, signal_name=None, expect=1, lost="unsaved")


def probe_full_disk(choice: str) -> tuple[str, str]:
    """``tmpfs`` where a tmpfs can be mounted (root, mount allowed), else ``simulated``."""
    if choice == "simulated":
        return "simulated", "--disk-full simulated"
    why = ""
    if shutil.which("mount") is None:
        why = "no mount command"
    elif os.geteuid() != 0:
        why = "not root"
    else:
        probe = tempfile.mkdtemp(prefix="fault_drill_probe_")
        try:
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe],
                capture_output=True,
                text=True,
            )
            if done.returncode == 0:
                subprocess.run(["umount", probe], check=False)
                return "tmpfs", "mount -t tmpfs allowed"
            why = (done.stderr.strip().splitlines() or ["mount refused"])[-1]
        finally:
            os.rmdir(probe)
    if choice == "tmpfs":
        raise SystemExit(f"error: --disk-full tmpfs: cannot mount a tmpfs ({why})")
    return "simulated", why


class small_tmpfs:  # noqa: N801 - a context manager
    """Mount a tmpfs over ``ckpt_dir`` holding a copy of its files and less room than one more
    checkpoint; on exit copy what it holds back to the directory below and unmount it."""

    def __init__(self, ckpt_dir: Path) -> None:
        self.dir = ckpt_dir

    def __enter__(self) -> int:
        files = [p for p in self.dir.iterdir() if p.is_file()]
        page = 4096
        used = sum(-(-p.stat().st_size // page) * page for p in files)
        biggest = max((p.stat().st_size for p in files), default=page)
        size = used + max(biggest // 2 // page, 4) * page  # the probe fits, a checkpoint not
        held = Path(tempfile.mkdtemp(prefix="fault_drill_ckpt_"))
        for path in files:  # the mount hides them: the training must see the same files
            shutil.copy2(path, held / path.name)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(self.dir)],
            check=True,
            capture_output=True,
        )
        try:
            for path in held.iterdir():
                shutil.copy2(path, self.dir / path.name)
        except BaseException:
            subprocess.run(["umount", "-l", str(self.dir)], check=False)
            raise
        finally:
            shutil.rmtree(held)
        return size

    def __exit__(self, *exc) -> None:
        try:
            held = Path(tempfile.mkdtemp(prefix="fault_drill_tmpfs_"))
            for path in self.dir.iterdir():
                shutil.copy2(path, held / path.name)
        finally:
            if subprocess.run(["umount", str(self.dir)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(self.dir)], check=False)
        for path in self.dir.iterdir():  # the directory below the mount: what the tmpfs held
            if not (held / path.name).exists():
                path.unlink()
        for path in held.iterdir():
            shutil.copy2(path, self.dir / path.name)
        shutil.rmtree(held)


# --------------------------------------------------------------------------- the drill


def final_run(drill: Drill) -> list[str]:
    """Finish the run; metrics.json must agree with the checkpoints. Prints its line."""
    args, state = drill.args, drill.state
    problems: list[str] = []
    training = Training.start(
        [*state.overrides, "trainer.resume=true"], warm=drill.spares.take(again=False)
    )
    code = training.finish(timeout=args.timeout + 2 * args.steps)
    found = RESUMED_LINE.search(training.output())
    if state.ckpt_step is not None and (not found or int(found.group(2)) != state.ckpt_step):
        problems.append(f"did not resume from last.pt at step {state.ckpt_step}")
    if state.ended and training.steps:
        problems.append(f"an ended run trained on (steps {training.steps})")
    if code != 0:
        problems.append(f"exit code {code}")
    progress = load_progress(state.run_dir, problems)
    last, best = progress.get("last.pt", {}), progress.get("best.pt", {})
    metrics: dict = {}
    try:
        metrics = json.loads((state.run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        problems.append(f"metrics.json unreadable: {err}")
    expected = {
        "status": "finished",
        "steps": args.steps,
        "best_step": best.get("step"),
        "val_bleu": best.get("best_bleu"),
    }
    wrong = {k: metrics.get(k) for k, v in expected.items() if metrics and metrics.get(k) != v}
    if wrong:
        problems.append(f"metrics.json {wrong}, expected {expected}")
    if last.get("step") != args.steps:
        problems.append(f"last.pt step {last.get('step')}, expected {args.steps}")
    history = history_steps(state.run_dir, problems)
    if history != expected_history(args.steps, True):
        problems.append(f"history.jsonl {history}, expected {expected_history(args.steps, True)}")
    if not (state.run_dir / "hyps" / "test.txt").is_file():
        problems.append("no hyps/test.txt")
    if (state.run_dir / LOCK_NAME).exists():
        problems.append(f"{LOCK_NAME} left behind")
    redo = "redid the final test" if state.ended and not training.steps else "trained to the end"
    status = "ok" if not problems else "FAILED: " + "; ".join(problems)
    print(
        f"final run: resumed at step {state.ckpt_step}, {redo} -> exit {code} | checked: "
        f"metrics.json status {metrics.get('status')}, steps {metrics.get('steps')} = last.pt "
        f"{last.get('step')}, best_step {metrics.get('best_step')} = best.pt {best.get('step')}, "
        f"val_bleu {metrics.get('val_bleu')} = best.pt's {best.get('best_bleu')}, history "
        f"{show_steps(history)}, test BLEU {metrics.get('test_bleu')}, lock released: {status}",
        flush=True,
    )
    if problems:
        print(training.tail(), flush=True)
    return problems


def run_drill(args: argparse.Namespace, kinds: list[Kind]) -> int:
    run_dir = Path(args.run_dir) if args.run_dir else Path(tempfile.mkdtemp(prefix="fault_drill_"))
    run_dir = run_dir.resolve()
    if run_dir.exists() and any(run_dir.iterdir()):
        print(f"error: hydra.run.dir={run_dir} is not empty; give a new directory", file=sys.stderr)
        return 2
    overrides = [*TINY, f"trainer.max_steps={args.steps}", f"hydra.run.dir={run_dir}"]
    if args.cache_dir:
        overrides.append(f"data.cache_dir={Path(args.cache_dir).resolve()}")
    state = State(run_dir=run_dir, overrides=overrides, steps=args.steps)
    drill = Drill(args, state, kinds)
    began = time.monotonic()
    print(
        f"fault drill: {len(kinds)} faults, seed {args.seed}, {args.steps} steps, run {run_dir}\n"
        f"full disk: {drill.full_disk} ({drill.full_disk_why})\n"
        f"schedule: {', '.join(k.name for k in kinds)}",
        flush=True,
    )
    survived = 0
    try:
        survived, problems = faults(drill, kinds)
    finally:
        drill.spares.close()
    print(f"wall time {time.monotonic() - began:.0f}s", flush=True)
    print(f"faults survived: {survived}/{len(kinds)}", flush=True)
    return 0 if survived == len(kinds) and not problems else 1


def faults(drill: Drill, kinds: list[Kind]) -> tuple[int, list[str]]:
    """Every fault, then the final run; (faults survived, the final run's problems)."""
    state, survived = drill.state, 0
    for i, kind in enumerate(kinds):
        if kind.moment in ("startup", "evaluate") and state.ckpt_step is None:
            kind = KINDS["sigkill-train"]  # a start-up kill proves most once there is a run
        out = drill.run(i, kind)
        status = "ok" if not out.problems else "FAILED: " + "; ".join(out.problems)
        notes = f" ({'; '.join(out.notes)})" if out.notes else ""
        print(
            f"fault {i + 1}/{len(kinds)} {kind.name}: {out.where} -> exit {out.code} | checked: "
            f"{', '.join(out.checks)}: {status}{notes} [{out.timing()}]",
            flush=True,
        )
        if out.problems:
            print(out.training.tail() if out.training else "", flush=True)
        else:
            survived += 1
    return survived, final_run(drill)


def parse_kinds(text: str, parser: argparse.ArgumentParser) -> list[Kind]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in KINDS]
    if unknown or not names:
        parser.error(f"--kinds: unknown {unknown}; valid: {', '.join(KINDS)}")
    kinds = [KINDS[name] for name in names]
    first_final = next((i for i, k in enumerate(kinds) if k.moment == "final-test"), len(kinds))
    if any(k.moment != "final-test" for k in kinds[first_final:]):
        parser.error("--kinds: the final-test kinds must come last (the run has ended then)")
    return kinds


# the seq2seq-train overrides the drill takes; its tiny config (TINY) is fixed
OVERRIDABLE = ("trainer.max_steps", "hydra.run.dir", "data.cache_dir")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--faults", type=int, help=f"faults to inject (default {DEFAULT_FAULTS}, or --kinds)"
    )
    parser.add_argument(
        "--kinds", help=f"comma-separated fault kinds instead of the schedule: {', '.join(KINDS)}"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault moments")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per wait")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="start every training in a new interpreter (default: one imported ahead)",
    )
    parser.add_argument(
        "--disk-full",
        choices=("auto", "tmpfs", "simulated"),
        default="auto",
        help="full disk: a small tmpfs where mount is allowed (auto), or simulated ENOSPC",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="seq2seq-train overrides, of these keys only (the drill's tiny config is fixed): "
        "trainer.max_steps=N (default: what the faults need), hydra.run.dir=DIR (a new run "
        "directory; default: a temporary one), data.cache_dir=DIR (default: the config's)",
    )
    args = parser.parse_intermixed_args(argv)
    given = dict(override.partition("=")[::2] for override in args.overrides)
    unknown = sorted(set(given) - set(OVERRIDABLE))
    if unknown:
        parser.error(f"{unknown[0]}: the drill takes {', '.join(OVERRIDABLE)} (KEY=VALUE)")
    args.run_dir, args.cache_dir = given.get("hydra.run.dir"), given.get("data.cache_dir")
    try:
        args.steps = int(given["trainer.max_steps"]) if "trainer.max_steps" in given else None
    except ValueError:
        parser.error(f"trainer.max_steps={given['trainer.max_steps']}: not a whole number")
    if args.kinds:
        kinds = parse_kinds(args.kinds, parser)
        if args.faults is not None and args.faults != len(kinds):
            parser.error(f"--faults {args.faults} but --kinds names {len(kinds)}")
    else:
        if args.faults is not None and args.faults < 1:
            parser.error("need --faults >= 1")
        kinds = schedule(DEFAULT_FAULTS if args.faults is None else args.faults)
    args.steps = default_steps(kinds) if args.steps is None else args.steps
    if args.steps < min_steps(kinds):
        parser.error(f"need trainer.max_steps >= {min_steps(kinds)} for these faults")
    return run_drill(args, kinds)


if __name__ == "__main__":
    sys.exit(main())
