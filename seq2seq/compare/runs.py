"""Run directories -> records: status, variant label, seed, and the setup a comparison holds
fixed (data, model, wiring, budget, precision, decoding), read from the saved config."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import run_files
from ..evaluation.bleu import run_tokenize
from ..models.registry import model_family
from ..run_files import EVAL, HYDRA, HYDRA_CONFIG, METRICS, RunFileError

# finished | diverged (stopped on non-finite losses, still scored on its best checkpoint) |
# failed (its metrics say so) | unfinished (no metrics: running or killed) |
# broken (a file of the run cannot be read)
STATUS_RANK = {"finished": 0, "diverged": 1, "failed": 2, "unfinished": 3, "broken": 4}
SETUP = ("data", "model", "wiring", "budget", "precision", "decode", "bleu")
MODEL_SIZES = (
    "cell",
    "emb_size",
    "hidden_size",
    "num_layers",
    "bidirectional",
    "d_model",
    "heads",
    "ff_size",
    "encoder_layers",
    "decoder_layers",
)


@dataclass
class RunRecord:
    path: Path
    status: str
    label: str
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    seed: int | None = None
    error: str | None = None  # failed: the run's error; broken: which file and why
    # the evaluations of seq2seq-evaluate with gold_alignments=: name -> its AER
    gold_evaluations: dict[str, float] = field(default_factory=dict)

    @property
    def scored(self) -> bool:
        """Has test scores: finished, or diverged and scored on its best checkpoint."""
        return self.status in ("finished", "diverged")

    @property
    def name(self) -> str:
        return self.path.name

    def setup(self) -> dict[str, str | None]:
        return run_setup(self.config, self.metrics)

    @property
    def tokenize(self) -> str:
        return scored_tokenize(self.config, self.metrics)

    @property
    def commit(self) -> str | None:
        """The commit of the code that trained the run (None for runs made before it was
        recorded)."""
        return self.metrics.get("commit")


def model_of(config: dict) -> type | None:
    """The registered model family of a saved config (its class), None for a name no family
    has (an odd or partial config)."""
    return model_family(str((config.get("model") or {}).get("name")))


def has_own_attention(config: dict) -> bool:
    """The run's model has an attention of its own (the Transformer's), so the config's
    ``attention`` group was not used."""
    family = model_of(config)
    return family is not None and family.own_attention is not None


def variant_label(config: dict) -> str:
    """A short name for a run's model choice, its family's label, e.g. ``additive``,
    ``local-m/general``, ``transformer``."""
    family = model_of(config)
    if family is None:
        return str((config.get("model") or {}).get("name") or "?")
    return family.label(config.get("model") or {}, config.get("attention") or {})


def has_weights(record: RunRecord) -> bool:
    """The run's model has attention weights (a model with its own attention, every variant but
    ``none``; an unknown variant counts as having them)."""
    if has_own_attention(record.config):
        return True
    from ..modules.attention import ATTENTIONS

    variant = ATTENTIONS.get((record.config.get("attention") or {}).get("name") or "")
    return variant is None or bool(variant.has_weights)


def is_run_dir(path: Path) -> bool:
    return (path / HYDRA_CONFIG).is_file() or (path / METRICS).is_file()


def discover_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories named directly or found below the given (multirun) directories."""
    runs: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise FileNotFoundError(
                f"{path} is not a directory: pass run directories or a multirun directory"
            )
        if is_run_dir(path):
            runs.append(path)
            continue
        found = sorted(
            {p.parent.parent for p in path.rglob(HYDRA_CONFIG)}
            | {p.parent for p in path.rglob(METRICS) if EVAL not in p.parts}
        )
        runs += [p for p in found if is_run_dir(p)]
    if not runs:
        raise FileNotFoundError(
            f"no run directories (with {HYDRA}/ or {METRICS}) under {', '.join(map(str, paths))}"
        )
    return list(dict.fromkeys(runs))


def _seed(config: dict, metrics: dict) -> int | None:
    seed = (config.get("trainer") or {}).get("seed", metrics.get("seed"))
    try:
        return int(seed) if seed is not None else None
    except (TypeError, ValueError):
        return None


def load_record(path: Path) -> RunRecord:
    """The record of one run directory; a file that cannot be read makes it ``broken`` (with the
    file's name and the reason), never an exception."""
    broken: list[str] = []

    def read(reader, empty):
        try:
            return reader(path)
        except RunFileError as err:  # one bad run must not stop the report
            broken.append(f"{err.path.relative_to(path).as_posix()}: {err.reason}")
            return empty

    config: dict = read(run_files.read_hydra_config, {})
    metrics: dict = read(run_files.read_metrics, {})
    history: list[dict] = read(run_files.read_history, [])
    if not config and metrics:
        config = {
            "model": {"name": metrics.get("model")},
            "attention": {"name": metrics.get("attention")},
        }
    gold = gold_evaluations(path)
    status = str(metrics.get("status", "unfinished")) if metrics else "unfinished"
    if status not in STATUS_RANK:
        status = "unfinished"  # e.g. "interrupted": resumable, not final
    error = metrics.get("error") if status == "failed" else None
    if broken:
        status, error = "broken", "; ".join(broken)
    return RunRecord(
        path,
        status,
        variant_label(config),
        config,
        metrics,
        history,
        _seed(config, metrics),
        error,
        gold,
    )


def gold_evaluations(run_dir: Path) -> dict[str, float]:
    """name -> AER of each evaluation (``eval/<name>/``) scored against gold links (one whose
    metrics cannot be read is left out: they are not the run's own record)."""
    found = {}
    for path in sorted(run_dir.glob(f"{EVAL}/*/{METRICS}")):
        try:
            metrics = run_files.read_metrics(path.parent)
        except RunFileError:
            continue
        if isinstance(metrics.get("aer"), int | float):
            found[path.parent.name] = float(metrics["aer"])
    return found


def set_gold_aer(record: RunRecord, gold: str | None, problems: list[str]) -> None:
    """``metrics["gold_aer"]`` from the run's gold evaluation: the one named ``gold``, else its
    only one; a missing or ambiguous one adds a line to ``problems``."""
    found = record.gold_evaluations
    if not found or "gold_aer" in record.metrics:
        return
    where = f"`{record.label}` seed {record.seed} ({record.name})"
    if gold is not None:
        if gold in found:
            record.metrics["gold_aer"] = found[gold]
        else:
            problems.append(f"{where}: no gold evaluation eval/{gold} (it has {', '.join(found)})")
    elif len(found) == 1:
        record.metrics["gold_aer"] = next(iter(found.values()))
    else:
        problems.append(f"{where}: several gold evaluations ({', '.join(found)}): pass --gold NAME")


def _describe(node: dict, keys: tuple[str, ...]) -> str:
    return ", ".join(f"{k}={node[k]}" for k in keys if node.get(k) is not None)


def run_setup(config: dict, metrics: dict | None = None) -> dict[str, str | None]:
    """What a comparison holds fixed or varies, as short strings (None where the saved config
    does not say): data (name, pair, limits), model (family and sizes), wiring (the attention's
    or its paper's default; the Transformer's own), budget, precision, decode (beam, alpha),
    bleu (the tokenizer of the test BLEU)."""
    metrics = metrics or {}
    data = config.get("data") or {}
    model = config.get("model") or {}
    attention = config.get("attention") or {}
    trainer = config.get("trainer") or {}
    decode = config.get("decode") or {}
    out: dict[str, str | None] = dict.fromkeys(SETUP)
    if data.get("name"):
        limits = _describe(data, ("train_limit", "eval_limit"))
        out["data"] = f"{data['name']} {data.get('src')}-{data.get('tgt')}" + (
            f" ({limits})" if limits else ""
        )
    if model.get("name"):
        sizes = _describe(model, MODEL_SIZES)
        out["model"] = f"{model['name']}({sizes})" if sizes else str(model["name"])
        out["wiring"] = _wiring(model, attention)
    if trainer:
        budget = [
            f"{key}={trainer[key]}{'s' if key == 'max_time' else ''}"
            for key in ("max_steps", "max_epochs", "max_time")
            if trainer.get(key) is not None
        ]
        out["budget"] = ", ".join(budget) or "none"
    precision = metrics.get("precision") or trainer.get("precision")
    out["precision"] = str(precision) if precision is not None else None
    if decode or metrics.get("beam_size") is not None:
        out["decode"] = _describe(
            {
                "beam": decode.get("beam_size", metrics.get("beam_size")),
                "alpha": decode.get("alpha"),
            },
            ("beam", "alpha"),
        )
    if metrics or config.get("bleu"):
        out["bleu"] = f"tokenize={scored_tokenize(config, metrics)}"
    return out


def scored_tokenize(config: dict, metrics: dict) -> str:
    """BLEU's tokenizer of a run's test scores: its metrics', else the saved config's (13a for
    runs made before the option, which all used it)."""
    return str(metrics.get("bleu_tokenize") or run_tokenize(config))


def _wiring(model: dict, attention: dict) -> str | None:
    if has_own_attention({"model": model}):
        return str(model["name"])
    if attention.get("wiring"):
        return str(attention["wiring"])
    from ..modules.attention import ATTENTIONS

    variant = ATTENTIONS.get(attention.get("name") or "")
    return str(variant.paper_wiring) if variant is not None else None


def in_updates(record: RunRecord) -> bool:
    """The run's budget was in updates: trainer.max_steps set, and max_time null or not what
    stopped it (the default trainer caps time as well; the metrics' ``stopped_by`` says)."""
    trainer = record.config.get("trainer") or {}
    if trainer.get("max_steps") is None:
        return False
    return trainer.get("max_time") is None or record.metrics.get("stopped_by") not in (
        None,
        "max_time",
    )


def budget_axis(records: list[RunRecord]) -> str:
    """``updates`` when every run's budget is in updates (:func:`in_updates`), else ``time``:
    what the curves are drawn against."""
    return "updates" if records and all(in_updates(r) for r in records) else "time"
