"""The one way a config is composed outside a Hydra app (:func:`compose`: the commands that
are no Hydra app, the pre-check of the two that are, the Python API and the tests), with one
line for every composition error (an unknown group option, key or value, a ``+key`` the schema
lacks): the line names the valid choices. ``CONFIG_DIR`` is the config tree of the Hydra apps too.

Neutral: imports nothing of the package but config (the schemas) and errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from .config import register_configs
from .errors import ConfigError

# absolute path: works for editable installs, wheels and `python -m` alike
CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def config_error_line(err: BaseException) -> str:
    """Hydra/OmegaConf composition error -> one line, keeping the reason and the valid options."""
    lines = []
    text = str(err).strip()
    if err.__cause__ is not None and text.startswith("Error merging override"):
        text = f"{text}: {str(err.__cause__).strip()}"  # the cause says which values are valid
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(("Config search path", "full_key", "object_type", "reference_type")):
            break
        if line.startswith("To append to your config use +"):
            continue  # Hydra's advice: a +key the schema lacks is refused too
        if line:
            lines.append(line)
    if not lines:
        return type(err).__name__
    if any(line.startswith("Available options in") for line in lines):
        at = next(i for i, line in enumerate(lines) if line.startswith("Available options in"))
        return lines[0] + "; valid: " + ", ".join(lines[at + 1 :])
    return "; ".join(lines)


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


def _is_group(name: str) -> bool:
    """``name`` is a config group (``+experiment=x`` appends an option, not a key)."""
    from hydra.core.config_store import ConfigStore

    return (CONFIG_DIR / name).is_dir() or isinstance(ConfigStore.instance().repo.get(name), dict)


def unknown_append_line(cfg, overrides: Sequence[str]) -> str | None:
    """The line refusing a ``+key=v`` (or ``++key=v``) whose node is a schema without that key,
    as for a misspelt key without ``+`` (Hydra adds it and the run ignores it); None if none."""
    from omegaconf import DictConfig, OmegaConf

    for override in overrides:
        key = _override_key(override)
        if not override.startswith("+") or "/" in key or key.split(".")[0] == "hydra":
            continue
        parent_key, _, leaf = key.rpartition(".")
        if not parent_key and _is_group(leaf):
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


def compose(
    overrides: Sequence[str] = (), config_name: str = "train", *, return_hydra_config: bool = False
):
    """The config ``configs/<config_name>.yaml`` with ``overrides`` (Hydra's ``key=value``
    syntax), as ``seq2seq-train <overrides>`` would use it but without Hydra's run directory
    (its ``hydra`` node only with ``return_hydra_config``). A composition error is a
    :class:`ConfigError` with one line, the same for the CLI and the API."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    def compose_fn(ovr: Sequence[str]):
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return hydra_compose(
                config_name=config_name,
                overrides=list(ovr),
                return_hydra_config=return_hydra_config,
            )

    register_configs()
    GlobalHydra.instance().clear()
    try:
        try:
            cfg = compose_fn(overrides)
        except (HydraException, OmegaConfBaseException) as err:
            line = unknown_key_line(err, compose_fn, overrides) or config_error_line(err)
            raise ConfigError(line) from None
    finally:
        GlobalHydra.instance().clear()
    line = unknown_append_line(cfg, overrides)
    if line:
        raise ConfigError(line)
    return cfg
