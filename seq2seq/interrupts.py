"""One interrupt rule for every command: SIGINT/SIGTERM end the work with one line saying what
was interrupted and how to continue, exit 128 + the signal (130, 143), no traceback.

- :class:`Interrupted`: what a signal raises while :func:`signals_raise` is active.
- :func:`interrupt_signal`: the signal behind an exception, also when a library wrapped it
  (``datasets`` turns an interrupt in its generator into ``DatasetGenerationError``).
- :func:`report_interrupts`: runs a command's work; an interrupt becomes the line and the exit.

Neutral: imports nothing of the package.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import NoReturn, TypeVar

T = TypeVar("T")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGINT or SIGTERM, raised where the work cannot stop at a step boundary. A
    BaseException, as KeyboardInterrupt is: no ``except Exception`` meant for errors (a
    corrupt cache rebuilt, a fallback) swallows it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"signal {signal.Signals(signum).name}")


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """SIGINT/SIGTERM raise :class:`Interrupted` at once (work that is redone whole)."""

    def handle(signum, frame) -> None:  # noqa: ARG001
        raise Interrupted(signum)

    previous = {}
    for sig in SIGNALS:
        try:
            previous[sig] = signal.signal(sig, handle)
        except ValueError:  # not the main thread: no signal handling
            pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def interrupt_signal(err: BaseException | None) -> int | None:
    """The signal number when ``err`` is, or was caused by, an interrupt (KeyboardInterrupt
    counts as SIGINT); None otherwise. Follows ``__cause__``/``__context__``."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, Interrupted):
            return err.signum
        if isinstance(err, KeyboardInterrupt):
            return int(signal.SIGINT)
        err = err.__cause__ or err.__context__
    return None


def interrupted_line(what: str, signum: int, advice: str) -> str:
    return f"interrupted (signal {signal_name(signum)}) during {what}: {advice}"


def exit_interrupted(what: str, signum: int, advice: str) -> NoReturn:
    """Print the one line and exit as a shell reports a process the signal ended."""
    print(interrupted_line(what, signum, advice), file=sys.stderr, flush=True)
    raise SystemExit(128 + int(signum))


def report_interrupts(fn: Callable[[], T], what: str, advice: str) -> T:
    """``fn()`` with SIGINT/SIGTERM raising; an interrupt, also one a library wrapped in its
    own error, ends in :func:`exit_interrupted` (SEQ2SEQ_DEBUG=1: re-raised)."""
    try:
        with signals_raise():
            return fn()
    except BaseException as err:
        if isinstance(err, SystemExit):
            raise
        signum = interrupt_signal(err)
        if signum is None or os.environ.get("SEQ2SEQ_DEBUG"):
            raise
        exit_interrupted(what, signum, advice)
