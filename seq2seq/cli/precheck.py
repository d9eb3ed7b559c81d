"""The command lines of seq2seq-train and seq2seq-evaluate checked before Hydra runs:
composition errors (unknown group option, key or value, a ``+key`` the schema lacks) as one
line, the config checks of :mod:`seq2seq.validation`, and the run directory, so a bad command
fails in a second and creates nothing.

Composing here, before Hydra composes again, is the one way to a one-line composition error:
Hydra's app prints its own report of one before any code of ours runs. A single run's job does
not check a config this pre-check checked (:func:`prechecked`)."""

from __future__ import annotations

from collections.abc import Sequence

from hydra.types import RunMode

from ..composition import compose
from ..evaluation.bleu import check_tokenize
from ..training.checks import check_config
from ..validation import check_evaluate_config, check_run_dir

SWEEP_FLAGS = ("-m", "--multirun")


def prechecked(argv: Sequence[str]) -> bool:
    """Whether the pre-check composes and checks the config of ``argv``: no flag given
    (``--cfg``, ``-cn``, ``-m``, ...: Hydra's own business). Then a single run's job (Hydra's
    mode RUN) has a checked config and does not check it again; a sweep's jobs check their own."""
    return not any(a.startswith("-") for a in argv)


def _compose_argv(argv: Sequence[str], config_name: str):
    """The composed config (Hydra's node included) of ``argv``, or ConfigError with one line;
    None when a flag is given (see :func:`prechecked`)."""
    if not prechecked(argv):
        return None
    return compose(argv, config_name, return_hydra_config=True)


def _check_sweep_dir_flag(argv: Sequence[str]) -> None:
    """With ``-m`` only, a literal ``hydra.sweep.dir=X`` must be creatable (Hydra makes it)."""
    flags = [a for a in argv if a.startswith("-")]
    if not flags or any(f not in SWEEP_FLAGS for f in flags):
        return
    for arg in argv:
        key, _, value = arg.partition("=")
        if key == "hydra.sweep.dir" and value and "${" not in value:
            check_run_dir(value, key="hydra.sweep.dir")


def precheck_evaluate_argv(argv: Sequence[str]) -> None:
    """Check seq2seq-evaluate's overrides before Hydra runs (composition, ``run_dir``, decoding
    options); ConfigError with one line if bad. Skipped when a flag is given."""
    cfg = _compose_argv(argv, "evaluate")
    if cfg is not None:
        check_evaluate_config(cfg)
        if cfg.bleu.tokenize is not None:  # a missing extra: before the model is loaded
            check_tokenize(cfg.bleu.tokenize)


def precheck_train_argv(argv: Sequence[str]) -> None:
    """Check seq2seq-train's overrides before Hydra runs; ConfigError with one line if bad.

    Skipped (Hydra decides) when any flag is given (``-m``, ``--cfg``, ``-cn``, ...), but for
    a literal ``hydra.sweep.dir=X`` beside ``-m`` alone. Without ``-m`` a sweep value
    (``a,b``) is refused by composition itself, as one line. For a config whose
    ``hydra.mode`` is MULTIRUN (``experiment=compare_attention``) only composition and
    ``hydra.sweep.dir`` are checked: its jobs change the base config and check their own.
    """
    from omegaconf.errors import OmegaConfBaseException

    cfg = _compose_argv(argv, "train")
    if cfg is None:  # a flag: Hydra decides, but a sweep directory it would make is checked
        _check_sweep_dir_flag(argv)
        return
    multirun = cfg.hydra.get("mode") == RunMode.MULTIRUN
    if not multirun:  # a sweep's jobs override the base config: each job checks its own
        check_config(cfg)  # the run's one check: its job does not check again
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        run_dir = cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir
    except OmegaConfBaseException:
        return  # an interpolation only Hydra's app can resolve: Hydra reports it
    check_run_dir(run_dir, key=key)
