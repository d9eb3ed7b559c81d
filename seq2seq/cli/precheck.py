"""seq2seq-train's command line checked before Hydra runs: composition errors (unknown group
option, key or value) as one line, the config checks of :mod:`seq2seq.validation`, and the
run directory, so a bad command fails in a second and creates nothing."""

from __future__ import annotations

import os
from collections.abc import Sequence

from hydra.types import RunMode

from ..config import register_configs
from ..errors import ConfigError
from ..validation import check_run_dir, check_train_config
from .common import config_error_line

__all__ = ["precheck_train_argv"]


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _unknown_key_line(err: BaseException, compose_fn, overrides: Sequence[str]) -> str | None:
    """``Could not override 'a.b'`` -> ``unknown key a.b (Schema); valid: ...`` or None."""
    cause = err.__cause__
    full_key = getattr(cause, "full_key", None)
    if not full_key or "not in" not in str(cause):
        return None
    bad = [o for o in overrides if _override_key(o) == full_key or o.startswith(full_key + ".")]
    if not bad and not str(err).startswith("Could not override"):
        return None
    parent_key = full_key.rpartition(".")[0]
    groups = [o for o in overrides if "." not in _override_key(o)]  # they choose the schemas
    try:
        base = compose_fn(groups)
    except Exception:  # noqa: BLE001 - best effort: fall back to Hydra's own wording
        return None
    from omegaconf import DictConfig, OmegaConf

    node = OmegaConf.select(base, parent_key) if parent_key else base
    if not isinstance(node, DictConfig):
        return None
    schema = getattr(cause, "object_type", None)
    where = f" ({schema.__name__})" if isinstance(schema, type) else ""
    valid = ", ".join(sorted(str(k) for k in node.keys() if k != "hydra"))
    return f"unknown key {full_key!r}{where}; valid keys{' of ' + parent_key if parent_key else ''}: {valid}"


def precheck_train_argv(
    argv: Sequence[str], config_dir: str | os.PathLike, config_name: str = "train"
) -> None:
    """Check seq2seq-train's overrides before Hydra runs; ConfigError with one line if bad.

    Skipped (Hydra decides) when any flag is given (``-m``, ``--cfg``, ``-cn``, ...). Without
    ``-m`` a sweep value (``a,b``) is refused by composition itself, as one line. For a config
    whose ``hydra.mode`` is MULTIRUN (``experiment=compare_attention``) only composition and
    ``hydra.sweep.dir`` are checked: its jobs change the base config and check their own.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(argv)
    if any(a.startswith("-") for a in overrides):
        return  # --multirun, --cfg, --config-name, --help, ...: Hydra's own business

    def compose_fn(ovr: Sequence[str]):
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            return compose(config_name=config_name, overrides=list(ovr), return_hydra_config=True)

    register_configs()
    try:
        cfg = compose_fn(overrides)
    except (HydraException, OmegaConfBaseException) as err:
        line = _unknown_key_line(err, compose_fn, overrides) or config_error_line(err)
        raise ConfigError(line) from None
    multirun = cfg.hydra.get("mode") == RunMode.MULTIRUN
    if not multirun:  # a sweep's jobs override the base config: each job checks its own
        check_train_config(cfg)
    try:
        run_dir = cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir
    except OmegaConfBaseException:
        return  # an interpolation only Hydra's app can resolve: Hydra reports it
    check_run_dir(run_dir)
