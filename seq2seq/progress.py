"""The one progress-bar rule of every long step (training, decoding, data preparation)."""

from __future__ import annotations

import sys


def progress_bar(
    total: int | None,
    enabled: bool | None,
    *,
    desc: str,
    unit: str,
    initial: int = 0,
    leave: bool = False,
):
    """A tqdm bar on stderr. ``enabled`` None: only on a terminal; False: off (a disabled bar
    prints nothing and counts nothing, so callers update it unconditionally)."""
    from tqdm import tqdm

    disable = enabled is False or (enabled is None and not sys.stderr.isatty())
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        dynamic_ncols=True,
        leave=leave,
        disable=disable,
    )
