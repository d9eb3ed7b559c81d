"""What every entry point shares: logging set-up and one-line errors for bad input."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..composition import compose
from ..errors import Seq2SeqError
from ..interrupts import interrupt_signal

T = TypeVar("T")
log = logging.getLogger("seq2seq")

USER_ERRORS = (Seq2SeqError, ValueError, FileNotFoundError, PermissionError)


RERUN = "nothing was left half-written; run the same command again"


def report_user_errors(fn: Callable[[], T], *, what: str | None = None, advice: str = RERUN) -> T:
    """Run ``fn``; turn a user error into one ``error: ...`` line on stderr and exit code 1,
    and SIGINT/SIGTERM into one ``interrupted (signal ...) during <what>: <advice>`` line and
    exit 130/143 (:mod:`seq2seq.interrupts`), also when a library wrapped the interrupt.

    Set SEQ2SEQ_DEBUG=1 to get the full traceback instead.
    """
    from ..interrupts import report_interrupts

    def run() -> T:
        try:
            return fn()
        except USER_ERRORS as err:
            if os.environ.get("SEQ2SEQ_DEBUG") or interrupt_signal(err) is not None:
                raise
            message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            print(f"error: {message}", file=sys.stderr)
            sys.exit(1)

    return report_interrupts(run, what or command_name(), advice)


def command_name() -> str:
    """``seq2seq-evaluate`` for the console script (or ``python -m seq2seq.cli.evaluate``)."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "seq2seq"
    if name.endswith(".py"):
        name = "seq2seq-" + name.removesuffix(".py").replace("_", "-")
    return name


def handle_info_flags(argv: list[str], *, doc: str, config_name: str, example: str) -> list[str]:
    """The flags of a console script that composes a config without a Hydra app (prepare,
    translate): ``-h``/``--help`` prints ``doc`` and exits 0; ``--cfg job [--resolve]`` prints
    the composed config (YAML) and exits 0. Returns the overrides; an unknown flag is a
    ValueError in one line. Nothing is read from stdin."""
    if "-h" in argv or "--help" in argv:
        print(doc.strip())
        print(
            f"\nOverrides: any key of the {config_name} config (Hydra syntax, key=value), e.g. "
            f"{example}.\n"
            "Flags: -h/--help this text; --cfg job [--resolve] print the composed config."
        )
        raise SystemExit(0)
    overrides, show, resolve = [], False, False
    items = iter(argv)
    for arg in items:
        if arg == "--cfg":
            what = next(items, None)
            if what != "job":
                raise ValueError(f"--cfg takes 'job' here (got {what!r}): --cfg job [--resolve]")
            show = True
        elif arg == "--resolve":
            resolve = True
        elif arg.startswith("-"):
            raise ValueError(f"unknown flag {arg}: valid flags are -h/--help, --cfg job, --resolve")
        else:
            overrides.append(arg)
    if show:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(compose(overrides, config_name), resolve=resolve), end="")
        raise SystemExit(0)
    return overrides


def run_composed(
    command: Callable[[list[str]], object],
    *,
    doc: str,
    config_name: str,
    example: str,
    log_level: int = logging.WARNING,
    what: str | None = None,
    advice: str = RERUN,
) -> None:
    """The ``main`` of a console script that composes ``config_name`` outside a Hydra app:
    the info flags first (:func:`handle_info_flags`), then ``command(overrides)``, a user error
    in either as one line."""
    logging.basicConfig(level=log_level, format="%(message)s")
    overrides = report_user_errors(
        lambda: handle_info_flags(sys.argv[1:], doc=doc, config_name=config_name, example=example),
        what=what,
    )
    report_user_errors(lambda: command(overrides), what=what, advice=advice)
