"""The jobs a sweep was meant to run, against the runs there are: Hydra writes the sweep's
definition to ``<sweep dir>/multirun.yaml`` (the export keeps it beside the exported jobs), so
a report of a half-done grid can name every job still missing, including variants with no run
at all."""

from __future__ import annotations

import itertools
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from ..run_files import HYDRA_OVERRIDES

MULTIRUN_FILE = "multirun.yaml"


def sweep_params(multirun_yaml: Path) -> dict[str, list[str]] | None:
    """``{key: [value, ...]}`` of the sweep: ``hydra.sweeper.params`` with the command line's
    sweeps (``key=a,b``) over them; None when a key is left unset (``???``) or the file is not
    a sweep's."""
    cfg = OmegaConf.to_container(OmegaConf.load(multirun_yaml), resolve=False)
    hydra = cfg.get("hydra") or {}
    params = {str(k): str(v) for k, v in ((hydra.get("sweeper") or {}).get("params") or {}).items()}
    for override in (hydra.get("overrides") or {}).get("task") or []:
        key, _, value = str(override).partition("=")
        if key in params or "," in value:
            params[key] = value
    if not params or any(v == "???" for v in params.values()):
        return None
    parser = OverridesParser.create()
    expanded = {}
    for key, value in params.items():
        (override,) = parser.parse_overrides([f"{key}={value}"])
        sweep = override.is_sweep_override()
        expanded[key] = list(override.sweep_string_iterator()) if sweep else [value]
    return expanded


def _job_overrides(run_dir: Path) -> set[str]:
    path = run_dir / HYDRA_OVERRIDES
    try:
        return {str(o) for o in OmegaConf.load(path)}
    except (OSError, ValueError):
        return set()


def missing_jobs(paths: list[str | Path], run_dirs: list[Path]) -> list[str]:
    """One line per sweep found under ``paths`` (its multirun.yaml) naming the jobs no run
    directory beside it holds (a job counts as held whatever its status: failed and unfinished
    runs have their own lines in the report)."""
    lines = []
    files = sorted({f for p in map(Path, paths) for f in p.rglob(MULTIRUN_FILE)})
    for multirun in files:
        params = sweep_params(multirun)
        if params is None:
            continue
        sweep_dir = multirun.parent
        held = [_job_overrides(r) for r in run_dirs if r.parent == sweep_dir]
        keys = list(params)
        jobs = [dict(zip(keys, v, strict=True)) for v in itertools.product(*params.values())]
        missing = [
            " ".join(f"{k}={v}" for k, v in job.items())
            for job in jobs
            if not any({f"{k}={v}" for k, v in job.items()} <= overrides for overrides in held)
        ]
        if missing:
            lines.append(
                f"MISSING {len(missing)} of the {len(jobs)} jobs of the sweep {sweep_dir.name} "
                f"(no run yet): {', '.join(f'`{job}`' for job in missing)}"
            )
    return lines
