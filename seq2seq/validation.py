"""Config checks that run before any work, so bad input fails in a second with one clear line.

The schemas in :mod:`seq2seq.config` already refuse unknown keys, wrong types and values
outside an enum. What a type cannot say lives here: ranges (sizes >= 1, probabilities in
[0, 1)), relations (``d_model % heads``, ``nbest <= beam_size``, ``src != tgt``) and the run
directory. Every check names the key, the bad value and the valid range; all problems of a
config are reported together, on one line.

- :func:`check_train_config` — training, once per run (:func:`seq2seq.training.checks.check_config`).
- :func:`check_evaluate_config` — seq2seq-evaluate (its pre-check, else its job) and seq2seq-translate.
- :func:`check_run_dir` — the run directory can be created and written, without creating it.

The command-line pre-check that runs these before Hydra creates anything lives with the entry
points, in :mod:`seq2seq.cli.precheck`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import option_value
from .errors import ConfigError
from .models.registry import model_family

__all__ = [
    "bleu_tokenizers",
    "check_align_baseline_config",
    "check_alignment_options",
    "check_evaluate_config",
    "check_run_dir",
    "check_train_config",
    "index_or_mean",
    "tokenize_problem",
]


class _Problems:
    """Collects ``key must be ..., got value`` lines; raises them as one ConfigError."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, message: str) -> None:
        self.lines.append(message)

    def finite(self, node: Any, prefix: str, key: str) -> bool:
        """False (and the problem added) for a NaN or infinite float."""
        value = node.get(key)
        if isinstance(value, float) and not math.isfinite(value):
            self.add(f"{prefix}.{key} must be a finite number, got {value}")
            return False
        return True

    def at_least(self, node: Any, prefix: str, key: str, minimum: int, optional: bool = False):
        self.bounded(node, prefix, key, f">= {minimum}", lambda value: value >= minimum, optional)

    def positive(self, node: Any, prefix: str, key: str, optional: bool = False):
        self.bounded(node, prefix, key, "> 0", lambda value: value > 0, optional)

    def bounded(
        self, node: Any, prefix: str, key: str, bound: str, holds: Callable, optional: bool
    ) -> None:
        """The problem, if any, of ``node[key]`` against ``bound`` (its words, e.g. ``>= 1``;
        ``holds`` its test): unset (unless ``optional``), not finite, or out of bounds."""
        value = node.get(key)
        if value is None:
            if not optional:
                self.add(f"{prefix}.{key} must be set ({bound})")
            return
        if self.finite(node, prefix, key) and not holds(value):
            self.add(f"{prefix}.{key} must be {bound}, got {value}")

    def in_range(
        self, node: Any, prefix: str, key: str, low: float, high: float, *, closed: bool
    ) -> None:
        value = node.get(key)
        if value is None:
            return
        ok = low <= value <= high if closed else low <= value < high
        if not ok:
            interval = f"[{low:g}, {high:g}]" if closed else f"[{low:g}, {high:g})"
            self.add(f"{prefix}.{key} must be in {interval}, got {value}")

    def raise_if_any(self) -> None:
        if self.lines:
            raise ConfigError("; ".join(self.lines))


# --------------------------------------------------------------------------- training


def _check_model(cfg: Any, out: _Problems) -> None:
    """The family's own range checks (its class's ``check_options``, with the attention node
    for a family that reads it)."""
    family = model_family(option_value(cfg.model.get("name")))
    if family is not None:  # an unknown name fails in the builder, naming the valid ones
        for problem in family.check_options(cfg.model, cfg.get("attention") or {}):
            out.add(problem)


def _check_attention(cfg: Any, out: _Problems) -> None:
    attention = cfg.get("attention")
    if attention is None:
        return
    from .modules.attention import ATTENTIONS  # the variant's own range checks

    variant = ATTENTIONS.get(option_value(attention.get("name")))
    if variant is not None:  # an unknown name fails in the builder, naming the valid ones
        for problem in variant.check_options(attention):
            out.add(problem)


def _check_data(cfg: Any, out: _Problems) -> None:
    data = cfg.data
    for key in ("max_tokens", "max_len"):
        out.at_least(data, "data", key, 1)
    out.at_least(data.vocab, "data.vocab", "size", 8)  # 4 special pieces + a few characters
    for key in ("train_limit", "eval_limit"):
        out.at_least(data, "data", key, 1, optional=True)
    carve = data.get("carve")
    if carve is not None:
        for key in ("validation", "test", "seed"):
            out.at_least(carve, "data.carve", key, 0)
    unknown = sorted(set(data.get("columns") or {}) - {"src", "tgt"})
    if unknown:
        out.add(f"unknown key {unknown[0]!r} in data.columns; valid: src, tgt")
    vocab_coverage = data.vocab.get("character_coverage")
    if vocab_coverage is not None and not 0.0 < vocab_coverage <= 1.0:
        out.add(f"data.vocab.character_coverage must be in (0, 1], got {vocab_coverage}")
    src, tgt = data.get("src"), data.get("tgt")
    if src is not None and src == tgt:
        out.add(f"data.src and data.tgt are both {src!r}: choose two different languages")
    languages = list(data.get("languages") or [])
    if languages:
        for side, lang in (("src", src), ("tgt", tgt)):
            if lang not in languages:
                out.add(
                    f"data.{side}={lang!r} is not a language of {data.get('name')}; "
                    f"valid: {', '.join(languages)}"
                )


def _check_decode(decode: Any, out: _Problems, prefix: str = "decode") -> None:
    out.at_least(decode, prefix, "beam_size", 1)
    beam = decode.get("beam_size")
    nbest = decode.get("nbest")
    if nbest is not None and nbest < 1:
        out.add(f"{prefix}.nbest must be >= 1, got {nbest}")
    elif nbest is not None and beam is not None and beam >= 1 and nbest > beam:
        out.add(f"{prefix}.nbest must be <= {prefix}.beam_size={beam}, got {nbest}")
    out.positive(decode, prefix, "max_len_ratio")
    out.at_least(decode, prefix, "max_len_offset", 0)
    out.at_least(decode, prefix, "batch_size", 1)
    out.at_least(decode, prefix, "workers", 1, optional=True)
    out.at_least(decode, prefix, "alpha", 0, optional=True)


def _check_trainer(cfg: Any, out: _Problems) -> None:
    t = cfg.trainer
    if t.get("resume") and t.get("overwrite"):
        out.add(
            "trainer.resume=true and trainer.overwrite=true contradict each other (resume "
            "continues the run, overwrite deletes it); nothing was changed: keep one of them"
        )
    if all(t.get(key) is None for key in ("max_steps", "max_epochs", "max_time")):
        out.add("no training budget: set trainer.max_steps, trainer.max_epochs or trainer.max_time")
    for key in ("max_steps", "max_epochs", "max_time"):
        out.positive(t, "trainer", key, optional=True)
    out.at_least(t, "trainer", "seed", 0, optional=True)
    out.at_least(t, "trainer", "keep_last", 0, optional=True)
    for key in ("val_every", "log_every", "max_bad_steps"):
        out.at_least(t, "trainer", key, 1)
    out.at_least(t, "trainer", "patience", 1, optional=True)
    out.at_least(t, "trainer", "min_delta", 0)
    out.at_least(t, "trainer", "num_threads", 1, optional=True)
    out.at_least(t, "trainer", "heatmaps", 0)
    out.at_least(t, "trainer", "val_bleu_limit", 1, optional=True)
    out.positive(t, "trainer", "val_max_len_ratio")
    out.in_range(t, "trainer", "label_smoothing", 0.0, 1.0, closed=False)


def _check_optim(cfg: Any, out: _Problems) -> None:
    o = cfg.get("optim")
    if o is None:
        return
    out.positive(o, "optim", "lr")
    for key in ("weight_decay", "min_lr", "plateau_patience"):
        out.at_least(o, "optim", key, 0, optional=True)
    out.at_least(o, "optim", "decay_steps", 1, optional=True)
    out.finite(o, "optim", "clip_grad_norm")  # <= 0 disables clipping
    factor = o.get("plateau_factor")
    if factor is not None and not (isinstance(factor, float | int) and 0 < factor < 1):
        out.add(f"optim.plateau_factor must be in (0, 1), got {factor}")
    lr, min_lr = o.get("lr"), o.get("min_lr")
    if (
        option_value(o.get("schedule")) != "noam"  # the one schedule with no floor
        and isinstance(lr, float | int)
        and isinstance(min_lr, float | int)
        and math.isfinite(lr)
        and 0 <= min_lr
        and min_lr > lr
    ):
        out.add(f"optim.min_lr must be <= optim.lr={lr}, got {min_lr}")
    out.at_least(o, "optim", "accumulate", 1)
    out.at_least(o, "optim", "warmup_steps", 0)


def index_or_mean(value: Any) -> int | str | None:
    """``alignment.layer`` / ``alignment.head`` as given (a string from the schema): None, the
    string ``mean``, or an int; ValueError for anything else."""
    if value is None or value == "mean":
        return value
    if isinstance(value, bool):
        raise ValueError(f"not an index: {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    raise ValueError(f"not an index: {value!r}")


def check_alignment_options(alignment: Any, out: _Problems | None = None) -> None:
    """The ``alignment`` node's closed sets and ranges (hard, threshold, layer, head,
    symmetrize with reverse_run_dir, gold_index_base); ConfigError when ``out`` is None."""
    from .config import HARD_ALIGNMENTS, SYMMETRIZATIONS

    own = out is None
    out = out or _Problems()
    if alignment is None:
        return
    hard = alignment.get("hard")
    if hard is not None and hard not in HARD_ALIGNMENTS:
        out.add(f"alignment.hard must be one of {', '.join(HARD_ALIGNMENTS)}, got {hard!r}")
    out.in_range(alignment, "alignment", "threshold", 0.0, 1.0, closed=True)
    out.at_least(alignment, "alignment", "plot_first", 0, optional=True)
    for key in ("layer", "head"):
        try:
            index_or_mean(alignment.get(key))
        except ValueError:
            out.add(
                f"alignment.{key} must be an index (negative from the end), mean, or null (the "
                f"model's own), got {alignment.get(key)!r}"
            )
    method = alignment.get("symmetrize")
    if method is not None and method != "none" and method not in SYMMETRIZATIONS:
        out.add(
            f"alignment.symmetrize must be one of none, {', '.join(SYMMETRIZATIONS)}, "
            f"got {method!r}"
        )
    elif method not in (None, "none") and not alignment.get("reverse_run_dir"):
        out.add(
            f"alignment.symmetrize={method} needs alignment.reverse_run_dir=DIR: a run trained "
            "in the other direction (target -> source)"
        )
    elif method in (None, "none") and alignment.get("reverse_run_dir"):
        out.add(
            "alignment.reverse_run_dir is read only to symmetrise: set alignment.symmetrize="
            f"{'|'.join(SYMMETRIZATIONS)} (or leave reverse_run_dir out)"
        )
    base = alignment.get("gold_index_base")
    if base is not None and base not in (0, 1):
        out.add(f"alignment.gold_index_base must be 0 or 1, got {base}")
    if own:
        out.raise_if_any()


def bleu_tokenizers() -> tuple[str, ...]:
    """The values ``bleu.tokenize`` takes: sacreBLEU's tokenizers, as its ``-tok`` lists them."""
    from sacrebleu.metrics.bleu import BLEU

    return tuple(BLEU.TOKENIZERS)


def tokenize_problem(tokenize: Any) -> str | None:
    """The line refusing a ``bleu.tokenize`` that is not one of sacreBLEU's, None if it is
    (None itself: seq2seq-evaluate's "the run's own")."""
    if tokenize is None or str(tokenize) in bleu_tokenizers():
        return None
    return f"bleu.tokenize must be one of {', '.join(bleu_tokenizers())}, got {tokenize!r}"


def _check_bleu(cfg: Any, out: _Problems) -> None:
    problem = tokenize_problem((cfg.get("bleu") or {}).get("tokenize"))
    if problem:
        out.add(problem)


def _check_test_set(cfg: Any, out: _Problems) -> None:
    """``test_set=`` brings its own sources and references; ``langpair=`` is its pair."""
    langpair = cfg.get("langpair")
    if not cfg.get("test_set"):
        if langpair is not None:
            out.add("langpair= is the pair of a sacreBLEU test set: give test_set=NAME with it")
        return
    given = [f"{key}=" for key in ("src_file", "ref_file", "gold_text") if cfg.get(key)]
    if given:
        out.add(
            f"test_set= brings its own sources and references: give it or {', '.join(given)}, "
            "not both"
        )
    if langpair is not None and not re.fullmatch(r"[^\s-]+-[^\s-]+", str(langpair)):
        out.add(f"langpair must be SRC-TGT (e.g. en-de), got {langpair!r}")


def check_train_config(cfg: Any) -> None:
    """Raise ConfigError naming every out-of-range value of a composed training config.

    Pure: reads the config only (no files, no run directory), so it is cheap to call first.
    """
    out = _Problems()
    _check_model(cfg, out)
    _check_attention(cfg, out)
    _check_data(cfg, out)
    _check_decode(cfg.decode, out)
    _check_trainer(cfg, out)
    _check_optim(cfg, out)
    _check_bleu(cfg, out)
    check_alignment_options(cfg.get("alignment"), out)
    out.raise_if_any()


def check_decode_options(decode: Any) -> None:
    """Raise ConfigError for out-of-range ``decode.*`` options (the Python API's)."""
    out = _Problems()
    _check_decode(decode, out)
    out.raise_if_any()


def check_evaluate_config(cfg: Any) -> None:
    """Raise ConfigError for out-of-range decoding options of seq2seq-evaluate / -translate,
    or a missing ``run_dir``."""
    if _missing(cfg, "run_dir"):
        raise ConfigError("run_dir=DIR is required: the directory of a training run")
    out = _Problems()
    _check_decode(cfg.decode, out)
    limit = cfg.get("limit")
    if limit is not None and limit < 1:
        out.add(f"limit must be >= 1 (the first N lines), got {limit}")
    name = cfg.get("name")
    if name is not None and (
        not str(name).strip() or "/" in str(name) or "\\" in str(name) or str(name).startswith(".")
    ):
        out.add(
            f"name must be a plain folder name under eval/ (no '/', not starting with '.'), "
            f"got {name!r}"
        )
    split = cfg.get("split")
    if split is not None and not cfg.get("src_file") and split not in ("test", "validation"):
        out.add(f"split must be test or validation, got {split!r} (or give src_file=PATH)")
    _check_test_set(cfg, out)
    _check_bleu(cfg, out)
    check_alignment_options(cfg.get("alignment"), out)
    out.raise_if_any()


def check_align_baseline_config(cfg: Any) -> None:
    """Raise ConfigError for a seq2seq-align-baseline config without gold links or with
    out-of-range eflomal, alignment or data options."""
    from .config import SYMMETRIZATIONS

    if _missing(cfg, "gold_alignments"):
        raise ConfigError(
            "gold_alignments=FILE is required: the gold links (with gold_text=FILE, or "
            "src_file= and ref_file=, the pairs they describe)"
        )
    out = _Problems()
    if not cfg.get("gold_text") and not (cfg.get("src_file") and cfg.get("ref_file")):
        out.add(
            "the gold pairs are needed: gold_text=FILE ('source ||| target' lines) or src_file= and ref_file="
        )
    elif cfg.get("gold_text") and (cfg.get("src_file") or cfg.get("ref_file")):
        out.add(
            "gold_text= holds both sides of the gold pairs: give it or src_file=/ref_file=, not both"
        )
    limit = cfg.get("limit")
    if limit is not None and limit < 1:
        out.add(f"limit must be >= 1 (the first N gold pairs), got {limit}")
    eflomal = cfg.eflomal
    model = eflomal.get("model")
    if model not in (1, 2, 3):
        out.add(f"eflomal.model must be 1 (IBM1), 2 (+HMM) or 3 (+fertility), got {model}")
    out.at_least(eflomal, "eflomal", "n_samplers", 1)
    out.positive(eflomal, "eflomal", "rel_iterations")
    out.in_range(eflomal, "eflomal", "null_prior", 0.0, 1.0, closed=True)
    method = eflomal.get("symmetrize")
    if method not in ("none", *SYMMETRIZATIONS):
        out.add(
            f"eflomal.symmetrize must be one of none, {', '.join(SYMMETRIZATIONS)}, got {method!r}"
        )
    if eflomal.get("tokenize") not in ("13a", "none"):
        out.add(f"eflomal.tokenize must be 13a or none, got {eflomal.get('tokenize')!r}")
    check_alignment_options(cfg.get("alignment"), out)
    data = cfg.data
    src, tgt = data.get("src"), data.get("tgt")
    if src is not None and src == tgt:
        out.add(f"data.src and data.tgt are both {src!r}: choose two different languages")
    out.at_least(data, "data", "train_limit", 1, optional=True)
    out.raise_if_any()


def _missing(cfg: Any, key: str) -> bool:
    """``key`` unset, empty, or ``???`` (a DictConfig's MISSING)."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig) and OmegaConf.is_missing(cfg, key):
        return True
    return cfg.get(key) in (None, "", "???")


# --------------------------------------------------------------------------- run directory


def check_run_dir(path: str | os.PathLike, key: str = "hydra.run.dir") -> None:
    """ConfigError if ``path`` cannot be created (or written) as a run directory.

    Leaves nothing behind: finds the first existing ancestor, which must be a directory where
    a probe directory can be made (and is removed at once); the probe catches what permission
    bits do not show (a read-only file system, ``/proc``). ``key``: the option to change.
    """
    import tempfile

    path = Path(path).expanduser()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    reason = None
    if probe.exists() and not probe.is_dir():
        reason = f"{probe} is a file, not a directory"
    elif probe.is_dir() and not os.access(probe, os.W_OK | os.X_OK):
        reason = f"{probe}: permission denied"
    elif probe.is_dir():
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".seq2seq-probe-", dir=probe))
        except OSError as err:
            reason = f"nothing can be created in {probe}: {err.strerror}"
    if reason:
        what = "is not writable" if path.is_dir() else "cannot be created"
        raise ConfigError(f"run directory {path} {what} ({reason}); choose {key}=DIR")
