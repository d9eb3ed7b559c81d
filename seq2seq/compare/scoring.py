"""Test hypotheses against their references: the texts a run directory holds, which runs' test
BLEUs are comparable, sacreBLEU's paired bootstrap of each variant against the baseline seed by
seed, and BLEU by source length.

A run's final test leaves its hypotheses (``run_files.TEST_HYPS``) beside the test split's
source and reference lines they were scored against (``TEST_SOURCES``, ``TEST_REFERENCES``), one
line each per test sentence: the report reads those, never the corpus.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.bleu import DEFAULT_TOKENIZE, bleu_metric
from ..run_files import TEST_HYPS, TEST_REFERENCES, TEST_SOURCES
from .runs import RunRecord
from .variants import Variant, metric_values

LENGTH_BUCKETS = [(1, 8), (9, 12), (13, 16), (17, 20), (21, 10_000)]
SIGNIFICANCE = 0.05

# what decides the test split (not the cache, vocabulary or training limits); not dir: where a
# copy lies (ignored on resume too; its default is an interpolation)
REFERENCE_FIELDS = (
    *("name", "src", "tgt", "format", "files", "columns", "eval_limit", "carve"),
    *("hub_id", "hub_config", "revision", "load_kwargs", "hub_splits"),
)


@dataclass(frozen=True)
class RunTexts:
    """One run's test hypotheses with the source and reference lines they line up with."""

    hyps: list[str]
    sources: list[str]
    references: list[str]


def _lines(path: Path) -> list[str] | None:
    try:
        return path.read_text(encoding="utf-8").split("\n")[:-1] if path.is_file() else None
    except (OSError, UnicodeDecodeError):
        return None


def read_texts(records: list[RunRecord], problems: list[str]) -> dict[Path, RunTexts]:
    """Run directory -> its test texts, for every scored run whose hypotheses line up with its
    test references; each other scored run adds a line to ``problems``."""
    usable: dict[Path, RunTexts] = {}
    for r in records:
        if not r.scored:
            continue
        where = f"`{r.label}` seed {r.seed} ({r.name})"
        hyps = _lines(r.path / TEST_HYPS)
        sources, references = _lines(r.path / TEST_SOURCES), _lines(r.path / TEST_REFERENCES)
        if hyps is None:
            problems.append(f"{where}: no {TEST_HYPS}")
        elif sources is None or references is None:
            problems.append(
                f"{where}: {TEST_SOURCES} or {TEST_REFERENCES} missing or unreadable "
                "(no paired bootstrap, no BLEU by length)"
            )
        elif len(hyps) != len(references):
            problems.append(
                f"{where}: {len(hyps)} hypotheses for {len(references)} test references"
            )
        elif len(sources) != len(references):
            problems.append(
                f"{where}: {len(sources)} test sources for {len(references)} test references"
            )
        else:
            usable[r.path] = RunTexts(hyps, sources, references)
    return usable


def _unset_dropped(value: Any) -> Any:
    """A mapping without its None entries (``columns: {}`` of an older run is the newer schema's
    ``{src: null, tgt: null}``)."""
    if isinstance(value, dict):
        return {k: _unset_dropped(v) for k, v in value.items() if v is not None}
    return value


def reference_key(record: RunRecord) -> str | None:
    """What decides a run's test references, from its saved data config (None: no data config);
    a field a run saved before it existed counts as its schema default."""
    data = record.config.get("data")
    if not data:
        return None
    from ..config import DataConfig, schema_values

    defaults = schema_values(DataConfig)
    return json.dumps(
        {k: _unset_dropped(data.get(k, defaults.get(k))) for k in REFERENCE_FIELDS},
        sort_keys=True,
        default=str,
    )


def scoring(record: RunRecord) -> tuple[str, str | None, str | None]:
    """What a test BLEU depends on besides the attention: BLEU's tokenizer, the test references
    (:func:`reference_key`) and the commit of the code that trained the run (one comparison,
    one commit). Runs differing in any are never paired."""
    return record.tokenize, reference_key(record), record.commit


def mixed_scoring(records: list[RunRecord]) -> str | None:
    """The one line flagging scored runs whose test BLEUs are not comparable (different
    tokenizers, test references or code commits), None when they all share them."""
    scored = [r for r in records if r.scored]

    def counted(values: list[str]) -> str:
        return ", ".join(f"{v}: {values.count(v)} run(s)" for v in dict.fromkeys(values))

    scored_with = []
    tokenizers = [r.tokenize for r in scored]
    if len(set(tokenizers)) > 1:
        scored_with.append(f"different BLEU tokenizers ({counted(tokenizers)})")
    references = [reference_key(r) for r in scored]
    if len(set(references)) > 1:
        labels = [r.setup()["data"] or "unknown data" for r in scored]
        named = counted(labels) if len(set(labels)) == len(set(references)) else None
        scored_with.append(
            f"{len(set(references))} different test reference sets"
            + (f" ({named})" if named else "")
        )
    parts = [f"scored with {' and '.join(scored_with)}"] if scored_with else []
    commits = [(r.commit or "not recorded")[:12] for r in scored]
    if len(set(commits)) > 1:
        parts.append(f"of runs trained by different code commits ({counted(commits)})")
    if not parts:
        return None
    return (
        f"NOT COMPARABLE: test BLEU {', and '.join(parts)}; ΔBLEU and paired tests only between "
        "runs that share tokenizer, references and commit"
    )


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


def pair_with_baseline(
    variants: dict[str, Variant],
    base: str | None,
    texts: dict[Path, RunTexts],
    n_bootstrap: int,
) -> tuple[dict[str, dict[int, float]], dict[str, dict[int, float]]]:
    """Per variant, seed -> test BLEU(variant@seed) - test BLEU(base@seed), and seed -> p-value
    of sacreBLEU's paired bootstrap of variant@seed against base@seed (one test per seed, on
    the runs in ``texts``)."""
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
            a, b = metric_values([run], "test_bleu"), metric_values([base_run], "test_bleu")
            if a and b:
                diffs[label][seed] = a[0] - b[0]
        if n_bootstrap <= 0 or base_run.path not in texts:
            continue
        tested = [(label, run) for label, run in others if run.path in texts]
        p = paired_bootstrap(
            (base, texts[base_run.path].hyps),
            [(label, texts[run.path].hyps) for label, run in tested],
            texts[base_run.path].references,
            n_samples=n_bootstrap,
            tokenize=base_run.tokenize,
        )
        for label, value in p.items():
            pvalues[label][seed] = value
    return diffs, pvalues


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


def length_counts(sources: list[str]) -> list[int]:
    """How many test sentences fall in each bucket of source lengths."""
    return [sum(low <= len(s.split()) <= high for s in sources) for low, high in LENGTH_BUCKETS]


def length_buckets() -> list[str]:
    """The buckets' names, e.g. ``1-8`` and ``21+``."""
    return [f"{low}-{high}" if high < 10_000 else f"{low}+" for low, high in LENGTH_BUCKETS]
