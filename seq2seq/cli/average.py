"""seq2seq-average run_dir=DIR [last=N] [name=NAME]: average the weights of a run's last N
validation checkpoints (``checkpoints/step_<N>.pt``, kept by ``trainer.keep_last=N``) into
``checkpoints/<NAME>.pt`` (default ``avg_last<N>``), which ``seq2seq-evaluate run_dir=DIR
checkpoint=<NAME>`` and seq2seq-translate load like the best checkpoint.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .common import report_user_errors

OPTIONS = ("run_dir", "last", "name")


def parse(argv: list[str]) -> dict[str, str]:
    if "-h" in argv or "--help" in argv:
        print(__doc__.strip())
        raise SystemExit(0)
    options: dict[str, str] = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in OPTIONS:
            raise ValueError(
                f"unknown argument {arg!r}: give {', '.join(k + '=' for k in OPTIONS)}"
            )
        options[key] = value
    if "run_dir" not in options:
        raise ValueError("run_dir=DIR is required: the directory of a training run")
    return options


def average(argv: list[str]) -> Path:
    from ..checkpoint import average_checkpoints, save_checkpoint, step_checkpoints
    from ..run_files import CHECKPOINTS

    options = parse(argv)
    ckpt_dir = Path(options["run_dir"]) / CHECKPOINTS
    try:
        last = int(options.get("last", "5"))
    except ValueError:
        raise ValueError(f"last must be a whole number, got {options['last']!r}") from None
    if last < 1:
        raise ValueError(f"last must be >= 1, got {last}")
    name = options.get("name") or f"avg_last{last}"
    if name in ("best", "last") or name.startswith("step_"):
        raise ValueError(f"name={name} would replace a training checkpoint: choose another name")
    found = step_checkpoints(ckpt_dir)
    if len(found) < last:
        raise ValueError(
            f"{ckpt_dir} has {len(found)} step checkpoints (step_<N>.pt), fewer than last={last}: "
            f"train with trainer.keep_last={last} (or more), or lower last="
        )
    chosen = [path for _, path in found[-last:]]
    out = ckpt_dir / f"{name}.pt"
    elsewhere = (
        f"average a writable copy of the run (cp -r {options['run_dir']} COPY, then "
        f"seq2seq-average run_dir=COPY{'' if last == 5 else f' last={last}'})"
    )
    save_checkpoint(average_checkpoints(chosen), out, elsewhere=elsewhere)
    steps = ", ".join(str(step) for step, _ in found[-last:])
    print(f"averaged steps {steps} -> {out}")
    return out


def main() -> None:
    report_user_errors(
        lambda: average(sys.argv[1:]),
        what="seq2seq-average",
        advice="no averaged checkpoint was written; run the same command again",
    )


if __name__ == "__main__":
    main()
