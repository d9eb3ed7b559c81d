"""The command lines of seq2seq-train and seq2seq-evaluate checked before Hydra runs:
composition errors (unknown group option, key or value, a ``+key`` the schema lacks) as one
line, the config checks of :mod:`seq2seq.validation`, and the run directory, so a bad command
fails in a second and creates nothing."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from hydra.types import RunMode

from ..config import register_configs
from ..errors import ConfigError
from ..evaluation.bleu import check_tokenize
from ..validation import check_evaluate_config, check_run_dir, check_train_config
from .common import config_error_line

__all__ = [
    "precheck_evaluate_argv",
    "precheck_train_argv",
    "unknown_append_line",
    "unknown_key_line",
]

SWEEP_FLAGS = ("-m", "--multirun")


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def unknown_key_line(err: BaseException, compose_fn, overrides: Sequence[str]) -> str | None:
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


def _is_group(name: str, config_dir: str | os.PathLike) -> bool:
    """``name`` is a config group (``+experiment=x`` appends an option, not a key)."""
    from hydra.core.config_store import ConfigStore

    return (Path(config_dir) / name).is_dir() or isinstance(
        ConfigStore.instance().repo.get(name), dict
    )


def unknown_append_line(cfg, overrides: Sequence[str], config_dir: str | os.PathLike) -> str | None:
    """The line refusing a ``+key=v`` (or ``++key=v``) whose node is a schema without that key,
    as for a misspelt key without ``+`` (Hydra adds it and the run ignores it); None if none."""
    from omegaconf import DictConfig, OmegaConf

    for override in overrides:
        key = _override_key(override)
        if not override.startswith("+") or "/" in key or key.split(".")[0] == "hydra":
            continue
        parent_key, _, leaf = key.rpartition(".")
        if not parent_key and _is_group(leaf, config_dir):
            continue
        node = OmegaConf.select(cfg, parent_key) if parent_key else cfg
        schema = OmegaConf.get_type(node) if isinstance(node, DictConfig) else None
        if schema is None or not dataclasses.is_dataclass(schema):
            continue  # a plain dict (data.files): any key is welcome
        names = sorted(f.name for f in dataclasses.fields(schema))
        if leaf not in names:
            where = f" of {parent_key}" if parent_key else ""
            return f"unknown key {key!r} ({schema.__name__}); valid keys{where}: {', '.join(names)}"
    return None


def _compose_checked(argv: Sequence[str], config_dir: str | os.PathLike, config_name: str):
    """The composed config (Hydra's node included) of ``argv``, or ConfigError with one line;
    None when a flag is given (``--cfg``, ``-cn``, ``-m``, ...: Hydra's own business)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(argv)
    if any(a.startswith("-") for a in overrides):
        return None

    def compose_fn(ovr: Sequence[str]):
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            return compose(config_name=config_name, overrides=list(ovr), return_hydra_config=True)

    register_configs()
    try:
        cfg = compose_fn(overrides)
    except (HydraException, OmegaConfBaseException) as err:
        line = unknown_key_line(err, compose_fn, overrides) or config_error_line(err)
        raise ConfigError(line) from None
    line = unknown_append_line(cfg, overrides, config_dir)
    if line:
        raise ConfigError(line)
    return cfg


def _check_sweep_dir_flag(argv: Sequence[str]) -> None:
    """With ``-m`` only, a literal ``hydra.sweep.dir=X`` must be creatable (Hydra makes it)."""
    flags = [a for a in argv if a.startswith("-")]
    if not flags or any(f not in SWEEP_FLAGS for f in flags):
        return
    for arg in argv:
        key, _, value = arg.partition("=")
        if key == "hydra.sweep.dir" and value and "${" not in value:
            check_run_dir(value, key="hydra.sweep.dir")


def precheck_evaluate_argv(argv: Sequence[str], config_dir: str | os.PathLike) -> None:
    """Check seq2seq-evaluate's overrides before Hydra runs (composition, ``run_dir``, decoding
    options); ConfigError with one line if bad. Skipped when a flag is given."""
    cfg = _compose_checked(argv, config_dir, "evaluate")
    if cfg is not None:
        check_evaluate_config(cfg)
        if cfg.bleu.tokenize is not None:  # a missing extra: before the model is loaded
            check_tokenize(cfg.bleu.tokenize)


def precheck_train_argv(
    argv: Sequence[str], config_dir: str | os.PathLike, config_name: str = "train"
) -> None:
    """Check seq2seq-train's overrides before Hydra runs; ConfigError with one line if bad.

    Skipped (Hydra decides) when any flag is given (``-m``, ``--cfg``, ``-cn``, ...), but for
    a literal ``hydra.sweep.dir=X`` beside ``-m`` alone. Without ``-m`` a sweep value
    (``a,b``) is refused by composition itself, as one line. For a config whose
    ``hydra.mode`` is MULTIRUN (``experiment=compare_attention``) only composition and
    ``hydra.sweep.dir`` are checked: its jobs change the base config and check their own.
    """
    from omegaconf.errors import OmegaConfBaseException

    cfg = _compose_checked(argv, config_dir, config_name)
    if cfg is None:  # a flag: Hydra decides, but a sweep directory it would make is checked
        _check_sweep_dir_flag(argv)
        return
    multirun = cfg.hydra.get("mode") == RunMode.MULTIRUN
    if not multirun:  # a sweep's jobs override the base config: each job checks its own
        check_train_config(cfg)
        check_tokenize(cfg.bleu.tokenize)  # a missing extra: before Hydra makes the run dir
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        run_dir = cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir
    except OmegaConfBaseException:
        return  # an interpolation only Hydra's app can resolve: Hydra reports it
    check_run_dir(run_dir, key=key)
