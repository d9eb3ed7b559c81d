"""Peer toolkits for the speed benchmark: one interface, one module per peer.

Each peer lives in its own virtual environment (``scripts/install_peers.sh``:
``build/peers/<name>-venv``) and is run as a subprocess with that venv's python, 2 intra-op
threads, fp32, CPU, by ``harness.run_peer``. A peer is a module of this package that defines
``PEER``, an instance of a :class:`Peer` subclass; :func:`peers` finds them, so adding a peer is
adding one module (``joeynmt.py``, ``opennmt.py``).

What a peer says (everything else is shared, in ``harness.py`` and ``runner.py``):

* its data: ``vocab_lines`` (the vocabulary file it reads, from our sentencepiece pieces);
* its batching rule: ``batch_order`` and ``batch_cost`` (replayed to calibrate its batch size);
* its train-speed command: ``train_args`` writes its config and returns the runner arguments;
* its decode-speed command: ``decode_args`` (fixed-length output, ``min = max = decode_max_len``);
* how to read its output: ``step_pattern``, ``params_pattern``, ``decode_seconds_pattern``,
  ``checkpoint_names``/``checkpoint_glob``;
* inside its own interpreter: ``enter`` patches the method that receives each step's batches so
  the runner can count real target tokens, and returns the toolkit's entry point.

``ours.py`` holds our side (model sizes, optimizer, beam, seed) that every peer matches. This
module and the peer modules import only the standard library at import time: the runner imports
them in the peer's interpreter.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from .ours import SEED, SPM_SPECIALS

FAMILIES = ("rnn", "transformer")


class PeerError(RuntimeError):
    """A peer run failed; the message names the log file."""


@dataclass(frozen=True)
class PeerRun:
    """The settings of one peer run, as the harness gives them to the peer."""

    family: str
    data_dir: Path  # the segmented corpus and vocabularies (harness.write_peer_data)
    run_dir: Path  # configs, logs, outputs of this run
    src_lang: str
    tgt_lang: str
    total_steps: int  # warm-up + timed optimizer steps
    batch_size: int  # in the peer's own unit (calibrated)
    decode_max_len: int = 30
    decode_batch_size: int = 64

    @property
    def model_dir(self) -> Path:
        return self.run_dir / "model"


@runtime_checkable
class Observer(Protocol):
    """What the runner hands to :meth:`Peer.enter` (``runner.StepRecorder``)."""

    def count_tokens(self, cls: type, method: str, tokens: Callable[..., int]) -> None:
        """Wrap ``cls.method`` so that every call first adds ``tokens(self, *args)`` (the real
        target tokens of the batches it receives) to the current optimizer step."""


class Peer(ABC):
    """One peer toolkit. Subclasses set the class attributes and implement the abstract
    methods; the rest is shared."""

    name: ClassVar[str]  # also its venv: build/peers/<name>-venv
    version: ClassVar[str]
    batch_size_unit: ClassVar[str]  # what its batch size counts (reported beside the figures)
    decode_time_source: ClassVar[str]  # which log line the decode time comes from
    vocab_specials: ClassVar[tuple[str, ...]] = ()  # written before our pieces 4..
    # batching: True when an example that would overflow the batch starts the next one
    overflow_starts_next_batch: ClassVar[bool] = False
    # log lines: named groups; step_pattern has `step` and `tgt_tok_per_s` (+ any other figures)
    step_pattern: ClassVar[re.Pattern[str]]
    params_pattern: ClassVar[re.Pattern[str]]
    decode_seconds_pattern: ClassVar[re.Pattern[str]]  # group `seconds`
    checkpoint_glob: ClassVar[str]

    # ---- data and batching
    def vocab_lines(self, pieces: Sequence[str]) -> list[str]:
        """The vocabulary file the peer reads: its specials, then our pieces 4.. in id order."""
        return list(self.vocab_specials) + list(pieces[SPM_SPECIALS:])

    def vocab_path(self, data_dir: Path) -> Path:
        return Path(data_dir) / f"vocab.{self.name}.txt"

    @abstractmethod
    def batch_order(self, src_lens: Sequence[int], tgt_lens: Sequence[int], seed: int) -> list:
        """The example indices in the order the peer batches them, as a list of buckets."""

    @abstractmethod
    def batch_cost(self, src_len: int, tgt_len: int) -> int:
        """An example's padded length as the peer's batch size counts it (piece counts in)."""

    def simulate_batches(
        self, src_lens: Sequence[int], tgt_lens: Sequence[int], batch_size: int, seed: int = SEED
    ) -> list[list[int]]:
        """Replay the peer's training batching rule on piece counts (no specials) -> index lists:
        a batch closes once ``len(batch) * max cost >= batch_size``."""
        batches: list[list[int]] = []
        for bucket in self.batch_order(src_lens, tgt_lens, seed):
            batch: list[int] = []
            longest = 0
            for i in bucket:
                cost = self.batch_cost(src_lens[i], tgt_lens[i])
                candidate = max(longest, cost)
                if self.overflow_starts_next_batch and batch:
                    if candidate * (len(batch) + 1) > batch_size:
                        batches.append(batch)
                        batch, candidate = [], cost
                batch.append(i)
                longest = candidate
                if longest * len(batch) >= batch_size:
                    batches.append(batch)
                    batch, longest = [], 0
            if batch:
                batches.append(batch)
        return batches

    # ---- commands
    @abstractmethod
    def train_args(self, run: PeerRun) -> list[str]:
        """Write the training config under ``run.run_dir`` -> the runner's MODE ARGS..."""

    @abstractmethod
    def decode_args(
        self, run: PeerRun, *, beam: int, checkpoint: Path, src: Path, output: Path
    ) -> tuple[list[str], Path]:
        """A fixed-length decode of ``src`` -> (the runner's MODE ARGS..., the file it writes)."""

    @abstractmethod
    def checkpoint_names(self, total_steps: int) -> list[str]:
        """File names of the final checkpoint, most likely first (else: the newest glob match)."""

    def checkpoint(self, model_dir: Path, total_steps: int) -> Path:
        for name in self.checkpoint_names(total_steps):
            if (model_dir / name).exists():
                return model_dir / name
        found = sorted(model_dir.glob(self.checkpoint_glob), key=lambda p: p.stat().st_mtime)
        if not found:
            raise PeerError(f"no checkpoint in {model_dir}")
        return found[-1]

    # ---- its output
    def parse_train_log(self, text: str) -> dict[int, dict[str, float]]:
        """The peer's own per-step log figures -> {step: {'tgt_tok_per_s': ..., ...}}."""
        steps = {}
        for m in self.step_pattern.finditer(text):
            figures = {k: float(v) for k, v in m.groupdict().items()}
            steps[int(figures.pop("step"))] = figures
        return steps

    def log_tokens_per_s(self, text: str, warmup_steps: int) -> float | None:
        """Harmonic mean of the peer's own per-step target tok/s after warm-up (= tokens / time
        when the steps carry similar token counts); None when the log has no such lines."""
        rates = [
            v["tgt_tok_per_s"] for k, v in self.parse_train_log(text).items() if k > warmup_steps
        ]
        rates = [r for r in rates if r > 0]
        if not rates:
            return None
        return len(rates) / sum(1.0 / r for r in rates)

    def parse_params(self, text: str) -> int | None:
        found = self.params_pattern.findall(text)
        return int(found[-1]) if found else None

    def parse_decode_seconds(self, text: str) -> float | None:
        """The peer's own generation time for the (last) decoded set."""
        found = list(self.decode_seconds_pattern.finditer(text))
        return float(found[-1]["seconds"]) if found else None

    # ---- inside the peer's interpreter (runner.py)
    @abstractmethod
    def enter(self, mode: str, args: list[str], observer: Observer) -> Callable[[], Any]:
        """Patch the toolkit through ``observer`` and return its entry point for ``mode``.

        Runs in the peer's interpreter on the module's ``PEER`` (not the harness's instance), so
        it must not depend on constructor settings; anything a run needs is in its config/args."""


def check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")


def dump_yaml(config: dict, path: str | Path) -> Path:
    """Write ``config`` as YAML (JSON is valid YAML, used when PyYAML is missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import yaml

        text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    except ImportError:  # pragma: no cover
        text = json.dumps(config, indent=1)
    path.write_text(text, encoding="utf-8")
    return path


def peers() -> dict[str, Peer]:
    """Every peer module's ``PEER`` by name (the modules of this package that define one)."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        peer = getattr(module, "PEER", None)
        if isinstance(peer, Peer):
            found[peer.name] = peer
    return found


def get_peer(name: str) -> Peer:
    known = peers()
    if name not in known:
        raise ValueError(f"unknown toolkit {name!r}; valid: {', '.join(known)}")
    return known[name]
