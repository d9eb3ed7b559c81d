"""``compare(paths, out_dir)``: group runs by variant, seeds being its runs, and write the report.

A variant is a run's label (:func:`~seq2seq.compare.runs.variant_label`); each of its runs is
one seed (``trainer.seed`` of the saved config). Numbers only: what the comparison held fixed,
each variant's mean, sd and 95% t interval over its seeds, the paired differences against the
baseline seed by seed, the ranking's stability across seeds and attention diagnostics; the
files are described in seq2seq/compare/__init__.py.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from ..errors import ConfigError
from ..evaluation.bleu import DEFAULT_TOKENIZE, bleu_metric
from .diagnostics import DIAGNOSTICS, attention_diagnostics
from .plots import plot_alignment_grid, plot_bleu_by_length, plot_curves
from .runs import (
    SETUP,
    STATUS_RANK,
    RunRecord,
    budget_axis,
    discover_runs,
    load_record,
)
from .stats import Summary, ranking_stability, summarize
from .viewer import DEFAULT_SENTENCES, load_viewer

log = logging.getLogger(__name__)

LENGTH_BUCKETS = [(1, 8), (9, 12), (13, 16), (17, 20), (21, 10_000)]
SIGNIFICANCE = 0.05
UNSCORED = ("failed", "unfinished", "broken")
# metrics.json's AER of the runs themselves -> column (shown when some variant has it)
AER_COLUMNS = {"test_aer": "test AER", "gold_aer": "gold AER"}
PLOTS = {
    "curves.png": "validation loss and BLEU (curves.png)",
    "bleu_by_length.png": "test BLEU by source length (bleu_by_length.png)",
    "alignments.png": "test sentences' attention per variant (alignments.png)",
}


# --- test texts, hypotheses, BLEU ------------------------------------------------------------


class ReferenceTexts:
    """(sources, references) of the test split per distinct data config, loaded once each."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[list[str], list[str]] | None] = {}

    # not dir: where a copy lies (ignored on resume too; its default is an interpolation)
    TEST_FIELDS = (
        *("name", "src", "tgt", "format", "files", "columns", "eval_limit", "carve"),
        *("hub_id", "hub_config", "revision", "load_kwargs", "hub_splits"),
    )

    @staticmethod
    def key(record: RunRecord) -> str | None:
        """What decides the test split (not the cache, vocabulary or training limits); a field
        a run saved before it existed counts as its schema default."""
        data = record.config.get("data")
        if not data:
            return None
        from ..config import DataConfig, schema_values

        defaults = schema_values(DataConfig)
        return json.dumps(
            {k: data.get(k, defaults.get(k)) for k in ReferenceTexts.TEST_FIELDS},
            sort_keys=True,
            default=str,
        )

    def get(self, record: RunRecord) -> tuple[list[str], list[str]] | None:
        key = self.key(record)
        if key is None:
            return None
        if key not in self._cache:
            self._cache[key] = _load_test_texts(record)
        return self._cache[key]


def _load_test_texts(record: RunRecord) -> tuple[list[str], list[str]] | None:
    from .. import config as _registers_resolvers  # noqa: F401 - ${local_corpus:...} in saved configs
    from ..data.pipeline import load_split_texts

    try:
        return load_split_texts(OmegaConf.create(record.config["data"]), "test")
    except Exception as err:  # noqa: BLE001 - a missing corpus costs the bootstrap and the length plot
        log.warning("cannot load the test split of %s (%s)", record.path, err)
        return None


def _hyps(record: RunRecord) -> list[str] | None:
    path = record.path / "hyps" / "test.txt"
    try:
        return path.read_text(encoding="utf-8").split("\n")[:-1] if path.is_file() else None
    except (OSError, UnicodeDecodeError):
        return None


def paired_bootstrap(
    baseline: tuple[str, list[str]],
    systems: list[tuple[str, list[str]]],
    references: list[str],
    n_samples: int = 1000,
    tokenize: str = DEFAULT_TOKENIZE,
) -> dict[str, float]:
    """p-values of sacreBLEU's paired bootstrap resampling of each system against the baseline
    (BLEU with ``tokenize``)."""
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    if not systems:
        return {}
    named = [baseline, *systems]
    bleu_metric(tokenize)  # a tokenizer that cannot be built is one line
    test = PairedTest(
        named,
        {"BLEU": BLEU(tokenize=tokenize, references=[references])},
        references=None,
        test_type="bs",
        n_samples=n_samples,
    )
    _, scores = test()
    return {
        name: result.p_value
        for name, result in zip(scores["System"][1:], scores["BLEU"][1:], strict=True)
    }


def bleu_by_length(
    hyps: list[str], refs: list[str], sources: list[str], tokenize: str = DEFAULT_TOKENIZE
) -> list[float | None]:
    """Corpus BLEU (with ``tokenize``) of each bucket of source lengths (None: empty bucket)."""
    bleu = bleu_metric(tokenize)
    lengths = np.array([len(s.split()) for s in sources])
    out: list[float | None] = []
    for low, high in LENGTH_BUCKETS:
        idx = np.nonzero((lengths >= low) & (lengths <= high))[0]
        out.append(
            bleu.corpus_score([hyps[i] for i in idx], [[refs[i] for i in idx]]).score
            if len(idx)
            else None
        )
    return out


# --- grouping --------------------------------------------------------------------------------


@dataclass
class Variant:
    """The runs of one label; ``seeds`` holds one run per seed (a scored one where there is),
    ``duplicates`` the other runs of a seed already held (not counted)."""

    label: str
    runs: list[RunRecord] = field(default_factory=list)
    seeds: dict[int, RunRecord] = field(default_factory=dict)
    unseeded: list[RunRecord] = field(default_factory=list)
    duplicates: list[RunRecord] = field(default_factory=list)

    @property
    def members(self) -> list[RunRecord]:
        """One run per seed, by seed, then the runs without a known seed."""
        return [self.seeds[s] for s in sorted(self.seeds)] + self.unseeded

    @property
    def scored(self) -> list[RunRecord]:
        return [r for r in self.members if r.scored]

    def scored_at(self, seed: int) -> RunRecord | None:
        run = self.seeds.get(seed)
        return run if run is not None and run.scored else None


def group_runs(records: list[RunRecord]) -> dict[str, Variant]:
    """label -> Variant, in the order the labels were first found."""
    variants: dict[str, Variant] = {}
    for r in records:
        variants.setdefault(r.label, Variant(r.label)).runs.append(r)
    for v in variants.values():
        for r in sorted(v.runs, key=lambda r: STATUS_RANK[r.status]):  # stable: found order
            if r.seed is None:
                v.unseeded.append(r)
            elif r.seed in v.seeds:
                v.duplicates.append(r)
            else:
                v.seeds[r.seed] = r
    return variants


def choose_baseline(variants: dict[str, Variant], baseline: str | None) -> str | None:
    scored = [label for label, v in variants.items() if v.scored]
    if baseline is not None:
        if baseline not in scored:
            raise ValueError(
                f"baseline {baseline!r} is not a variant with a scored run; "
                f"variants with one: {', '.join(scored) or 'none'}"
            )
        return baseline
    if not scored:
        return None
    return "none" if "none" in scored else scored[0]


def _set_gold_aer(record: RunRecord, gold: str | None, problems: list[str]) -> None:
    """``metrics["gold_aer"]`` from the run's gold evaluation (see :func:`compare`)."""
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


@dataclass
class AlignmentRuns:
    """Runs on corpora with gold links whose ``test_aer`` is reported beside the variants of the
    same label: corpus (the runs' data, e.g. ``reverse src-tgt``) -> label -> Variant."""

    by_corpus: dict[str, dict[str, Variant]] = field(default_factory=dict)

    @classmethod
    def load(
        cls, paths: list[str | Path], variants: dict[str, Variant], problems: list[str]
    ) -> AlignmentRuns:
        if not paths:
            return cls()
        records = [load_record(p) for p in discover_runs(paths)]
        grouped: dict[str, list[RunRecord]] = {}
        for r in records:
            grouped.setdefault(r.setup()["data"] or "unknown data", []).append(r)
        runs = cls({corpus: group_runs(rs) for corpus, rs in grouped.items()})
        for corpus, found in runs.by_corpus.items():
            for label, v in found.items():
                where = f"AER run `{label}` on {corpus}"
                if label not in variants:
                    problems.append(f"{where}: no such variant in the comparison; not shown")
                for r in [*v.members, *v.duplicates]:
                    if not r.scored:
                        problems.append(f"{where} seed {r.seed} ({r.path}): {r.status}")
                    elif _has_weights(r) and not _metric([r], "test_aer"):
                        problems.append(f"{where} seed {r.seed} ({r.path}): no test_aer")
        return runs

    @staticmethod
    def column(corpus: str) -> str:
        return "aer_" + "".join(c if c.isalnum() else "_" for c in corpus).strip("_")

    def row(self, label: str) -> dict[str, Any]:
        """``aer_<corpus>_{mean,sd,n}`` of the label's scored seeds on each corpus."""
        row: dict[str, Any] = {}
        for corpus, found in self.by_corpus.items():
            v = found.get(label)
            s = summarize(_metric(v.scored, "test_aer")) if v is not None else Summary(0)
            key = self.column(corpus)
            row |= {
                f"{key}_mean": _round(s.mean),
                f"{key}_sd": _round(s.sd),
                f"{key}_ci_low": _round(s.low),
                f"{key}_ci_high": _round(s.high),
                f"{key}_n": s.n,
            }
        return row

    def describe(self) -> list[str]:
        """One note per corpus: what its runs held fixed."""
        notes = []
        for corpus, found in self.by_corpus.items():
            records = [r for v in found.values() for r in v.runs]
            fixed, _ = _held_fixed(records, found)
            notes.append(
                f"AER on {corpus}: test_aer (mean ± sd [95% CI] (n seeds)) of {len(records)} run(s) of the "
                f"same variants trained on that corpus, not on the data above; their BLEU is not "
                f"compared. Their setup: "
                + "; ".join(f"{k}: {v}" for k, v in fixed.items() if k != "data")
            )
        return notes


# --- the report ------------------------------------------------------------------------------


def _metric(records: list[RunRecord], key: str) -> list[float]:
    return [
        float(r.metrics[key])
        for r in records
        if isinstance(r.metrics.get(key), (int, float)) and math.isfinite(r.metrics[key])
    ]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _joined(values) -> str | None:
    """The distinct values, sorted, ``; ``-separated (``|`` would split a markdown cell)."""
    distinct = sorted({v for v in values if v is not None}, key=str)
    return "; ".join(map(str, distinct)) if distinct else None


def _has_weights(record: RunRecord) -> bool:
    if (record.config.get("model") or {}).get("name") == "transformer":
        return True
    from ..modules.attention import ATTENTIONS

    variant = ATTENTIONS.get((record.config.get("attention") or {}).get("name") or "")
    return variant is None or bool(variant.has_weights)


def compare(
    paths: list[str | Path],
    out_dir: str | Path,
    *,
    baseline: str | None = None,
    n_bootstrap: int = 1000,
    alignment_ids: list[int] | None = None,
    aer_paths: list[str | Path] | None = None,
    gold: str | None = None,
    html: str | Path | None = None,
    html_sentences: int = DEFAULT_SENTENCES,
) -> list[dict[str, Any]]:
    """Write the comparison files into ``out_dir``; return the per-run rows (runs.csv).

    ``aer_paths``: runs of the same variants on a corpus with gold links (e.g. the synthetic
    reversal corpus, ``data=reverse``): their ``test_aer`` fills one AER column per corpus
    beside the variant of the same label; their BLEU is not compared.

    ``gold``: the name of the ``seq2seq-evaluate ... gold_alignments=`` evaluation
    (``eval/<name>/``) whose AER is each run's gold AER; by default a run's only one.

    ``html``: also write the report as one self-contained page there (tables, plots and an
    attention viewer of up to ``html_sentences`` test sentences; see :mod:`.html_report`).
    """
    if html is not None and html_sentences < 1:
        raise ConfigError(f"html_sentences={html_sentences}: the viewer needs at least 1")
    records = [load_record(p) for p in discover_runs(paths)]
    variants = group_runs(records)
    base = choose_baseline(variants, baseline)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    aer_runs = AlignmentRuns.load(aer_paths or [], variants, problems)
    for r in records:
        _set_gold_aer(r, gold, problems)
    texts = ReferenceTexts()

    # hypotheses that line up with their test references
    usable: dict[Path, tuple[list[str], tuple[list[str], list[str]]]] = {}
    for r in records:
        if not r.scored:
            continue
        hyps, pair = _hyps(r), texts.get(r)
        if hyps is None:
            problems.append(f"`{r.label}` seed {r.seed} ({r.name}): no hyps/test.txt")
        elif pair is None:
            problems.append(
                f"`{r.label}` seed {r.seed} ({r.name}): test references not loadable "
                "(no paired bootstrap, no BLEU by length)"
            )
        elif len(hyps) != len(pair[1]):
            problems.append(
                f"`{r.label}` seed {r.seed} ({r.name}): {len(hyps)} hypotheses for "
                f"{len(pair[1])} test references"
            )
        else:
            usable[r.path] = (hyps, pair)

    diffs, pvalues = _pair_with_baseline(variants, base, usable, n_bootstrap)
    diagnostics = _diagnostics(records, problems)
    run_rows = _run_rows(records, variants, base, pvalues, diagnostics)
    variant_rows = [
        _variant_row(v, base, diffs[label], pvalues[label], diagnostics) | aer_runs.row(label)
        for label, v in variants.items()
    ]
    _write_csv(out_dir / "runs.csv", run_rows)
    _write_csv(out_dir / "comparison.csv", variant_rows)

    axis = budget_axis([r for r in records if r.scored] or records)
    bleu_by_seed: dict[int, dict[str, float]] = {}  # seed -> variant -> test BLEU
    for label, v in variants.items():
        for seed in v.seeds:
            run = v.scored_at(seed)
            if run is not None and (value := _metric([run], "test_bleu")):
                bleu_by_seed.setdefault(seed, {})[label] = value[0]
    stability = ranking_stability(bleu_by_seed)
    sections = _report_sections(
        records,
        variants,
        variant_rows,
        base=base,
        axis=axis,
        stability=stability,
        n_bootstrap=n_bootstrap,
        problems=problems,
        aer_runs=aer_runs,
    )
    (out_dir / "comparison.md").write_text(sections.markdown(), encoding="utf-8")

    plot_curves(
        {label: [r.history for r in v.scored if r.history] for label, v in variants.items()},
        axis,
        out_dir / "curves.png",
    )
    first = next(iter(usable.values()), None)
    counts = (
        [sum(low <= len(s.split()) <= high for s in first[1][0]) for low, high in LENGTH_BUCKETS]
        if first
        else None
    )
    plot_bleu_by_length(
        {
            label: [
                bleu_by_length(
                    usable[r.path][0], usable[r.path][1][1], usable[r.path][1][0], r.tokenize
                )
                for r in v.scored
                if r.path in usable
            ]
            for label, v in variants.items()
        },
        [f"{low}-{high}" if high < 10_000 else f"{low}+" for low, high in LENGTH_BUCKETS],
        counts,
        out_dir / "bleu_by_length.png",
    )
    panels = []  # (title, variant, run directory): each variant's first seed with a dump
    for label, v in variants.items():
        dumped = [r for r in v.scored if (r.path / "alignments" / "test.npz").is_file()]
        if dumped:
            panels.append((f"{label} (seed {dumped[0].seed})", label, dumped[0].path))
    plot_alignment_grid(
        [(title, run) for title, _, run in panels],
        out_dir / "alignments.png",
        alignment_ids or [0, 1],
    )
    if html is not None:
        from .html_report import write_html

        write_html(
            Path(html),
            sections,
            plots=[(caption, out_dir / name) for name, caption in PLOTS.items()],
            viewer=load_viewer(panels, html_sentences),
            limit=html_sentences,
            without_dump=[label for label in variants if label not in {p[1] for p in panels}],
        )
    return run_rows


def _pair_with_baseline(
    variants: dict[str, Variant],
    base: str | None,
    usable: dict[Path, tuple[list[str], tuple[list[str], list[str]]]],
    n_bootstrap: int,
) -> tuple[dict[str, dict[int, float]], dict[str, dict[int, float]]]:
    """Per variant, seed -> test BLEU(variant@seed) - test BLEU(base@seed), and seed -> p-value
    of sacreBLEU's paired bootstrap of variant@seed against base@seed (one test per seed)."""
    diffs: dict[str, dict[int, float]] = {label: {} for label in variants}
    pvalues: dict[str, dict[int, float]] = {label: {} for label in variants}
    if base is None:
        return diffs, pvalues
    for seed, base_run in sorted(variants[base].seeds.items()):
        if not base_run.scored:
            continue
        others = [
            (label, v.scored_at(seed))
            for label, v in variants.items()
            if label != base and v.scored_at(seed) is not None
        ]
        # BLEUs against other references or with another tokenizer are not paired
        others = [(label, run) for label, run in others if scoring(run) == scoring(base_run)]
        for label, run in others:
            a, b = _metric([run], "test_bleu"), _metric([base_run], "test_bleu")
            if a and b:
                diffs[label][seed] = a[0] - b[0]
        if n_bootstrap <= 0 or base_run.path not in usable:
            continue
        tested = [(label, run) for label, run in others if run.path in usable]
        p = paired_bootstrap(
            (base, usable[base_run.path][0]),
            [(label, usable[run.path][0]) for label, run in tested],
            usable[base_run.path][1][1],
            n_samples=n_bootstrap,
            tokenize=base_run.tokenize,
        )
        for label, value in p.items():
            pvalues[label][seed] = value
    return diffs, pvalues


def scoring(record: RunRecord) -> tuple[str, str | None]:
    """What a test BLEU depends on besides the hypotheses: BLEU's tokenizer and the test
    references (:meth:`ReferenceTexts.key`). Runs differing in it are never paired."""
    return record.tokenize, ReferenceTexts.key(record)


def mixed_scoring(records: list[RunRecord]) -> str | None:
    """The one line flagging scored runs whose test BLEUs are not comparable (different
    tokenizers or test references), None when they all share both."""
    scored = [r for r in records if r.scored]

    def counted(values: list[str]) -> str:
        return ", ".join(f"{v}: {values.count(v)} run(s)" for v in dict.fromkeys(values))

    mixed = []
    tokenizers = [r.tokenize for r in scored]
    if len(set(tokenizers)) > 1:
        mixed.append(f"different BLEU tokenizers ({counted(tokenizers)})")
    references = [ReferenceTexts.key(r) for r in scored]
    if len(set(references)) > 1:
        labels = [r.setup()["data"] or "unknown data" for r in scored]
        named = counted(labels) if len(set(labels)) == len(set(references)) else None
        mixed.append(
            f"{len(set(references))} different test reference sets"
            + (f" ({named})" if named else "")
        )
    if not mixed:
        return None
    return (
        "NOT COMPARABLE: test BLEU scored with "
        + " and ".join(mixed)
        + "; ΔBLEU and paired tests only between runs that share both"
    )


def _diagnostics(records: list[RunRecord], problems: list[str]) -> dict[Path, dict]:
    """Attention diagnostics of every scored run with weights and a dump, by run directory."""
    diagnostics: dict[Path, dict] = {}
    for r in records:
        if r.scored and _has_weights(r):
            try:
                found = attention_diagnostics(r.path / "alignments")
            except Exception as err:  # noqa: BLE001 - an unreadable dump costs its cells only
                problems.append(
                    f"`{r.label}` seed {r.seed} ({r.name}): alignments/test.npz unreadable ({err})"
                )
                continue
            if found is not None:
                diagnostics[r.path] = found
    return diagnostics


def _round(value, digits: int = 4):
    return round(value, digits) if isinstance(value, float) else value


def _run_rows(records, variants, base, pvalues, diagnostics) -> list[dict[str, Any]]:
    order = {label: i for i, label in enumerate(variants)}
    rows = []
    for r in sorted(
        records,
        key=lambda r: (
            STATUS_RANK[r.status],
            order[r.label],
            r.seed if r.seed is not None else math.inf,
            r.name,
        ),
    ):
        m = r.metrics
        counted = r.seed is not None and variants[r.label].seeds.get(r.seed) is r
        if r.label == base and counted and r.scored:
            p = "baseline"
        else:
            p = pvalues[r.label].get(r.seed) if counted else None
        diag = diagnostics.get(r.path, {})
        rows.append(
            {
                "variant": r.label,
                "seed": r.seed,
                "run": r.name,
                "status": r.status,
                "params": m.get("params"),
                "steps": m.get("steps"),
                "train_time_s": m.get("train_time_s"),
                "tokens_per_s": m.get("train_tokens_per_sec"),
                "val_bleu": m.get("val_bleu"),
                "test_bleu": m.get("test_bleu"),
                "test_chrf": m.get("test_chrf"),
                "beam": m.get("beam_size"),
                "p_vs_baseline": _round(p),
                "test_aer": m.get("test_aer"),
                "gold_aer": m.get("gold_aer"),
                **{key: _round(diag.get(key)) for key in DIAGNOSTICS},
                **r.setup(),
                "signature": m.get("sacrebleu_signature"),
                "error": r.error,
                "run_dir": str(r.path),
            }
        )
    return rows


def _seeds_with(v: Variant, status: str) -> str:
    return " ".join(
        str(r.seed) if r.seed is not None else r.name
        for r in [*v.members, *v.duplicates]
        if r.status == status
    )


def _variant_row(
    v: Variant,
    base: str | None,
    diffs: dict[int, float],
    pvalues: dict[int, float],
    diagnostics: dict[Path, dict],
) -> dict[str, Any]:
    scored = v.scored
    bleu, chrf = summarize(_metric(scored, "test_bleu")), summarize(_metric(scored, "test_chrf"))
    diff = summarize([diffs[s] for s in sorted(diffs)])
    speed = summarize(_metric(scored, "train_tokens_per_sec"))
    diag = [diagnostics[r.path] for r in scored if r.path in diagnostics]
    is_base = v.label == base
    row: dict[str, Any] = {
        "variant": v.label,
        "baseline": is_base,
        "n": len(scored),
        "seeds": " ".join(str(r.seed) for r in scored if r.seed is not None),
    }
    for name, s in (("test_bleu", bleu), ("test_chrf", chrf)):
        row |= {
            f"{name}_mean": _round(s.mean),
            f"{name}_sd": _round(s.sd),
            f"{name}_ci_low": _round(s.low),
            f"{name}_ci_high": _round(s.high),
        }
    row |= {
        "diff_vs_baseline_mean": None if is_base else _round(diff.mean),
        "diff_vs_baseline_sd": None if is_base else _round(diff.sd),
        "diff_vs_baseline_ci_low": None if is_base else _round(diff.low),
        "diff_vs_baseline_ci_high": None if is_base else _round(diff.high),
        "paired_seeds": None if is_base else diff.n,
        "diff_per_seed": " ".join(f"{s}:{diffs[s]:.4f}" for s in sorted(diffs)) or None,
        "p_per_seed": " ".join(f"{s}:{pvalues[s]:.4f}" for s in sorted(pvalues)) or None,
        "significant_seeds": (
            None if is_base or not pvalues else sum(p < SIGNIFICANCE for p in pvalues.values())
        ),
        "tested_seeds": None if is_base or not pvalues else len(pvalues),
        "steps_mean": _round(_mean(_metric(scored, "steps")), 1),
        "train_time_s_mean": _round(_mean(_metric(scored, "train_time_s")), 1),
        "tokens_per_s_mean": _round(speed.mean, 1),
        "tokens_per_s_sd": _round(speed.sd, 1),
    }
    for key in DIAGNOSTICS:
        row[key] = _round(_mean([d[key] for d in diag if d.get(key) is not None]))
    row["diagnostics_seeds"] = len(diag)
    row["test_aer"] = _round(_mean(_metric(scored, "test_aer")))
    row["gold_aer"] = _round(_mean(_metric(scored, "gold_aer")))
    setups = [r.setup() for r in v.runs]
    for key in SETUP:
        row[key] = _joined(s[key] for s in setups)
    for status in ("diverged", *UNSCORED):
        row[f"{status}_seeds"] = _seeds_with(v, status) or None
    return row


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)


def _num(value, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _aer_cell(row: dict, key: str) -> str:
    if not row.get(f"{key}_n"):
        return ""
    s = Summary(*(row[f"{key}_{part}"] for part in ("n", "mean", "sd", "ci_low", "ci_high")))
    if s.n == 1:
        return f"{s.mean:.3f} (1)"
    return f"{_summary_cell(s, digits=3)} ({s.n})"


def _summary_cell(s: Summary, *, interval: bool = True, digits: int = 2) -> str:
    if s.n == 0 or s.mean is None:
        return ""
    if s.n == 1 or s.sd is None:
        return f"{s.mean:.{digits}f} (n=1, no interval)"
    text = f"{s.mean:.{digits}f} ± {s.sd:.{digits}f}"
    if interval and s.low is not None:
        text += f" [{s.low:.{digits}f}, {s.high:.{digits}f}]"
    return text


def _row_summary(row: dict, name: str) -> Summary:
    n = row["paired_seeds"] if name == "diff_vs_baseline" else row["n"]
    return Summary(
        n or 0,
        row[f"{name}_mean"],
        row[f"{name}_sd"],
        row[f"{name}_ci_low"],
        row[f"{name}_ci_high"],
    )


def _held_fixed(records: list[RunRecord], variants: dict[str, Variant]):
    """(fixed: column -> value, varying: columns) over the runs' setups, seeds included."""
    setups = [r.setup() for r in records]
    fixed: dict[str, str] = {}
    varying: list[str] = []
    for key in SETUP:
        values = {s[key] for s in setups if s[key] is not None}
        if len(values) == 1:
            fixed[key] = values.pop()
        elif values:
            varying.append(key)
    # the seeds the numbers are over: each variant's scored seeds (its failures are in the notes)
    seed_sets = {
        tuple(sorted(r.seed for r in v.scored if r.seed is not None)) for v in variants.values()
    } - {()}
    if len(seed_sets) == 1:
        fixed["seeds"] = ", ".join(map(str, seed_sets.pop()))
    elif seed_sets:
        varying.append("seeds")
    return fixed, varying


@dataclass
class ReportSections:
    """The report's text, rendered as markdown (comparison.md) or HTML (comparison.html): the
    setup lines, the variant table, the speed table (column names, rows of cells) and notes
    (markdown inline: `code` spans)."""

    head: list[str]
    columns: list[str]
    rows: list[list[str]]
    speed_columns: list[str]
    speed_rows: list[list[str]]
    notes: list[str]

    SPEED_TITLE = "Speed (not a quality figure):"

    def markdown(self) -> str:
        def table(columns: list[str], rows: list[list[str]]) -> list[str]:
            lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            return lines + ["| " + " | ".join(cells) + " |" for cells in rows]

        return (
            "\n\n".join(self.head)
            + "\n\n"
            + "\n".join(table(self.columns, self.rows))
            + "\n\n"
            + "\n".join([self.SPEED_TITLE, "", *table(self.speed_columns, self.speed_rows)])
            + "\n\n"
            + "\n\n".join(self.notes)
            + "\n"
        )


def _report_sections(
    records: list[RunRecord],
    variants: dict[str, Variant],
    rows: list[dict[str, Any]],
    *,
    base: str | None,
    axis: str,
    stability,
    n_bootstrap: int,
    problems: list[str],
    aer_runs: AlignmentRuns,
) -> ReportSections:
    fixed, varying = _held_fixed(records, variants)
    aer_keys = [key for key in AER_COLUMNS if any(row[key] is not None for row in rows)]
    mixed = mixed_scoring(records)
    if mixed:
        log.warning("%s", mixed)
    head = [mixed] if mixed else []
    head += [
        "Held fixed: "
        + ("; ".join(f"{k}: {v}" for k, v in fixed.items()) if fixed else "nothing recorded"),
        "Budget: "
        + (
            "in updates (trainer.max_steps; max_time null or not reached): curves against updates"
            if axis == "updates"
            else "in training time or epochs: curves against training time"
        )
        + (
            f" ({fixed['budget']})"
            if "budget" in fixed
            else " (differs: see the budget column)"
            if "budget" in varying
            else " (not recorded)"
        ),
    ]
    columns = [
        "variant",
        "n",
        "test BLEU mean ± sd [95% CI]",
        "chrF mean ± sd",
        f"ΔBLEU vs {base or 'baseline'} [95% CI]",
        "sig. seeds",
        "steps",
        "entropy",
        "max weight",
        "saturated",
        "EOS mass",
        *[AER_COLUMNS[key] for key in aer_keys],
        *[f"AER on {corpus}" for corpus in aer_runs.by_corpus],
        *varying,
    ]
    table = []
    for row in rows:
        if row["baseline"]:
            diff_cell, sig = "baseline", ""
        else:
            diff_cell = _summary_cell(_row_summary(row, "diff_vs_baseline"))
            sig = f"{row['significant_seeds']}/{row['tested_seeds']}" if row["tested_seeds"] else ""
        seeds_cell = {"seeds": row["seeds"]}
        cells = [
            row["variant"],
            str(row["n"]),
            _summary_cell(_row_summary(row, "test_bleu")),
            _summary_cell(_row_summary(row, "test_chrf"), interval=False),
            diff_cell,
            sig,
            _num(row["steps_mean"], 0),
            _num(row["entropy"], 3),
            _num(row["max_weight"], 3),
            _num(row["saturated"], 3),
            _num(row["eos_mass"], 3),
            *[_num(row[key], 3) for key in aer_keys],
            *[_aer_cell(row, AlignmentRuns.column(corpus)) for corpus in aer_runs.by_corpus],
            *[str(seeds_cell.get(k, row.get(k)) or "") for k in varying],
        ]
        table.append(cells)
    speed = []
    for row in rows:
        tokens = Summary(row["n"], row["tokens_per_s_mean"], row["tokens_per_s_sd"])
        speed.append(
            [
                row["variant"],
                _num(row["train_time_s_mean"], 1),
                _summary_cell(tokens, interval=False, digits=1),
            ]
        )

    notes = [
        "n: seeds scored (finished, or diverged and scored on the best checkpoint); mean ± sd "
        "over those seeds (sd with n - 1); [95% CI]: the mean's interval, Student t with n - 1 "
        "degrees of freedom; n=1 has no interval.",
    ]
    if base is not None:
        notes.append(
            f"Baseline: `{base}`. ΔBLEU: mean over the seeds s both have of test BLEU(variant@s) - "
            f"test BLEU({base}@s), with its 95% t interval over seeds. sig. seeds: seeds where "
            f"sacreBLEU's paired bootstrap resampling ({n_bootstrap} samples) of variant@s against "
            f"{base}@s gives p < {SIGNIFICANCE}, over the seeds tested."
            + (" Paired bootstrap disabled (0 samples)." if n_bootstrap <= 0 else "")
        )
        pv = [
            f"`{row['variant']}` {row['p_per_seed']}"
            for row in rows
            if row["p_per_seed"] and not row["baseline"]
        ]
        if pv:
            notes.append("p-values per seed (seed:p): " + "; ".join(pv))
    if stability.taus:
        notes.append(
            f"Ranking stability: Kendall's tau-b between the rankings of the variants by test "
            f"BLEU of two seeds: mean {stability.mean:.3f}, min {stability.min:.3f} over "
            f"{len(stability.taus)} seed pair(s) ("
            + ", ".join(f"{s}-{t}: {tau:.3f}" for (s, t), tau in stability.taus.items())
            + ")."
        )
    else:
        notes.append(
            "Ranking stability: not computed (needs two seeds that both scored at least two "
            "variants with different test BLEU)."
        )
    notes.append(
        "Attention diagnostics (alignments/test.npz of each scored seed, the test hypotheses; "
        "mean over rows, then over seeds): entropy = row entropy / log(source length), max "
        "weight = the row's largest weight, saturated = share of rows with max weight > 0.99, "
        "EOS mass = weight on the source EOS. Empty: no weights (`none`) or no dump. AER: "
        "metrics.json's test_aer, and gold AER from seq2seq-evaluate gold_alignments= "
        "(eval/<name>/metrics.json), mean over seeds."
    )
    notes += aer_runs.describe()
    words = {
        "failed": "FAILED",
        "diverged": "DIVERGED",
        "unfinished": "UNFINISHED",
        "broken": "BROKEN",
    }
    for label, v in variants.items():
        for r in [*v.members, *v.duplicates]:
            if r.status not in words:
                continue
            where = f"`{label}` seed {r.seed if r.seed is not None else '?'} ({r.path})"
            why = {
                "failed": f": {r.error}",
                "diverged": ": stopped on non-finite losses; scored on its best checkpoint",
                "unfinished": ": no final metrics (still running, interrupted or killed)",
                "broken": f": unreadable {r.error}",
            }[r.status]
            notes.append(f"{words[r.status]} {where}{why}")
        for r in v.duplicates:
            notes.append(
                f"DUPLICATE `{label}` seed {r.seed} ({r.path}): a second run of a seed already "
                f"counted ({v.seeds[r.seed].name}); not counted"
            )
        for r in v.unseeded:
            notes.append(f"NO SEED `{label}` ({r.path}): no trainer.seed; counted, never paired")
    notes += problems
    signatures = sorted(
        {r.metrics.get("sacrebleu_signature") for r in records if r.scored} - {None}
    )
    if signatures:
        notes.append("BLEU signature: " + "; ".join(f"`{s}`" for s in signatures))
    return ReportSections(
        head=head,
        columns=columns,
        rows=table,
        speed_columns=["variant", "train time (s), mean", "tokens/s mean ± sd"],
        speed_rows=speed,
        notes=notes,
    )
