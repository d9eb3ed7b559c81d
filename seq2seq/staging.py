"""Directories that appear whole or not at all, and one writer per output.

- :class:`PidLock`: ``O_EXCL`` lock file holding the writer's pid, host and start time; a lock
  left by a dead process of this host is taken over.
- :func:`staged_dir`: work in a hidden sibling, then rename it into place; an error or an
  interrupt removes it, so nothing half-written is ever left looking valid.

Neutral: imports nothing of the package but :mod:`seq2seq.errors`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import Seq2SeqError

log = logging.getLogger("seq2seq")


class InUseError(Seq2SeqError):
    """Another live process holds the lock."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class PidLock:
    """``path`` created exclusively with ``{"pid", "host", "since"}``; ``in_use`` formats the
    refusal (keys: pid, host, since, path) when a live process holds it, raised as
    :attr:`error`."""

    error: type[Exception] = InUseError

    def __init__(self, path: Path, in_use: str) -> None:
        self.path = Path(path)
        self.in_use = in_use
        self.held = False

    def holder(self) -> dict | None:
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def acquire(self) -> PidLock:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%FT%T")}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(me) + "\n")
            self.held = True
            return self
        raise self.error(f"cannot take the lock {self.path}: it keeps reappearing")

    def _take_over_if_stale(self) -> None:
        holder = self.holder()
        if holder is None:
            return
        pid, host = holder.get("pid"), holder.get("host")
        if isinstance(pid, int) and host is not None:
            if host != socket.gethostname() or _alive(pid):
                raise self.error(
                    self.in_use.format(
                        pid=pid, host=host, since=holder.get("since", "?"), path=self.path
                    )
                )
            why = f"pid {pid} on {host} is no longer running"
        else:
            why = "the lock file is unreadable"
        log.warning("taking over the stale lock %s (%s)", self.path, why)
        self.path.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> PidLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def staging_path(final: Path) -> Path:
    return final.parent / f".{final.name}.partial-{os.getpid()}"


@contextlib.contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield an empty hidden sibling of ``final``; when the block ends normally it replaces
    ``final`` (the old one moved aside first, then removed), otherwise it is removed."""
    final = Path(final)
    stage = staging_path(final)
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    if final.exists():
        final.rename(old)
    try:
        stage.rename(final)
    except BaseException:
        if old.exists() and not final.exists():
            old.rename(final)
        shutil.rmtree(stage, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
