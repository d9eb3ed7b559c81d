"""A run directory's Hydra records as they were before this command.

Hydra writes this job's records (``run_files.HYDRA_RECORDS``: the config, Hydra's own settings
and the overrides) into the run directory before seq2seq-train's code runs, also when the training is then refused (the
directory holds another run) or fails to start. :class:`KeepRunRecords`, a Hydra callback
(``hydra.callbacks`` in configs/train.yaml), copies the old ones first; :func:`restore` puts
them back, bytes and times, so a refused or failed attempt leaves the run as it was (a later
``seq2seq-evaluate`` of it reads the run's own config, not the attempt's).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

from ..run_files import HYDRA, HYDRA_RECORDS

# run directory -> {file name: (bytes, (atime_ns, mtime_ns))}; one process, one run
_saved: dict[Path, dict[str, tuple[bytes, tuple[int, int]]]] = {}


def snapshot(run_dir: Path) -> None:
    records = {}
    for name in HYDRA_RECORDS:
        path = run_dir / HYDRA / name
        if path.is_file():
            stat = path.stat()
            records[name] = (path.read_bytes(), (stat.st_atime_ns, stat.st_mtime_ns))
    _saved[run_dir.resolve()] = records


def restore(run_dir: Path) -> None:
    """Put back the records :func:`snapshot` found; remove the ones this attempt added."""
    records = _saved.get(run_dir.resolve())
    if records is None:
        return
    for name in HYDRA_RECORDS:
        path = run_dir / HYDRA / name
        if name in records:
            data, times = records[name]
            path.write_bytes(data)
            os.utime(path, ns=times)
        elif records:  # the run had records, this attempt wrote one it lacked
            path.unlink(missing_ok=True)


class KeepRunRecords(Callback):
    """Copies a single run's Hydra records before Hydra rewrites them."""

    def on_run_start(self, config: Any, **kwargs: Any) -> None:  # noqa: ARG002
        try:
            run_dir = OmegaConf.select(config, "hydra.run.dir")
        except Exception:  # noqa: BLE001 - an unresolvable run dir fails later, in one line
            return
        if run_dir:
            snapshot(Path(str(run_dir)))
