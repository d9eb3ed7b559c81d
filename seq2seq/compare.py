"""Runs -> tables and plots: which attention variant wins, where, and why.

``compare(paths, out_dir)`` reads training run directories (or multirun directories holding
them) and writes:

    comparison.md / comparison.csv   variant, parameters, steps, training time, tokens/s,
                                     validation BLEU, test BLEU and chrF, paired bootstrap p-value
                                     against the baseline, sacreBLEU signature; diverged, failed
                                     and unfinished runs are listed as such
    bleu_by_length.png               test BLEU by source length bucket, one line per variant
    curves.png                       validation BLEU against training time
    alignments.png                   the same test sentences' heatmaps side by side across variants
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

LENGTH_BUCKETS = [(1, 8), (9, 12), (13, 16), (17, 20), (21, 10_000)]


@dataclass
class RunRecord:
    path: Path
    status: str  # finished | diverged (stopped on non-finite losses, still scored) | failed | unfinished
    label: str
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)

    @property
    def scored(self) -> bool:
        """Has test scores: finished, or diverged and scored on its best checkpoint."""
        return self.status in ("finished", "diverged")


def variant_label(config: dict) -> str:
    """A short name for a run's model choice, e.g. ``additive``, ``local-m/general``, ``transformer``."""
    model = config.get("model", {})
    if model.get("name") == "transformer":
        return "transformer"
    from .modules.attention import ATTENTIONS  # each variant writes its own label

    attention = config.get("attention", {})
    name = attention.get("name", "?")
    variant = ATTENTIONS.get(name)
    label = variant.label(attention) if variant is not None else name
    if attention.get("wiring"):
        label += f" ({attention['wiring']})"
    return label


def is_run_dir(path: Path) -> bool:
    return (path / ".hydra" / "config.yaml").is_file() or (path / "metrics.json").is_file()


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
            {p.parent.parent for p in path.rglob(".hydra/config.yaml")}
            | {p.parent for p in path.rglob("metrics.json") if "eval" not in p.parts}
        )
        runs += [p for p in found if is_run_dir(p)]
    if not runs:
        raise FileNotFoundError(
            f"no run directories (with .hydra/ or metrics.json) under {', '.join(map(str, paths))}"
        )
    return list(dict.fromkeys(runs))


def load_record(path: Path) -> RunRecord:
    config: dict = {}
    if (path / ".hydra" / "config.yaml").is_file():
        config = OmegaConf.to_container(
            OmegaConf.load(path / ".hydra" / "config.yaml"), resolve=False
        )
    metrics: dict = {}
    if (path / "metrics.json").is_file():
        metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    history = []
    if (path / "history.jsonl").is_file():
        history = [
            json.loads(line)
            for line in (path / "history.jsonl").read_text().splitlines()
            if line.strip()
        ]
    status = metrics.get("status", "unfinished") if metrics else "unfinished"
    if not config and metrics:
        config = {
            "model": {"name": metrics.get("model")},
            "attention": {"name": metrics.get("attention")},
        }
    return RunRecord(path, status, variant_label(config), config, metrics, history)


def unique_labels(records: list[RunRecord]) -> None:
    """Disambiguate equal labels of finished runs (e.g. two seeds) with the run directory's name;
    diverged, failed and unfinished runs always carry it, so they never take a finished run's
    label."""
    counts: dict[str, int] = {}
    for r in records:
        if r.status == "finished":
            counts[r.label] = counts.get(r.label, 0) + 1
    for r in records:
        if r.status != "finished" or counts[r.label] > 1:
            r.label = f"{r.label} [{r.path.name}]"


def _test_texts(record: RunRecord) -> tuple[list[str], list[str]] | None:
    from . import config as _registers_resolvers  # noqa: F401 - ${local_corpus:...} in saved configs
    from .data.pipeline import load_split_texts

    try:
        return load_split_texts(OmegaConf.create(record.config["data"]), "test")
    except Exception as err:  # noqa: BLE001 - a missing corpus only costs the per-length plot
        log.warning("cannot load the test split of %s (%s)", record.path, err)
        return None


def _hyps(record: RunRecord) -> list[str] | None:
    path = record.path / "hyps" / "test.txt"
    return path.read_text(encoding="utf-8").split("\n")[:-1] if path.is_file() else None


def paired_bootstrap(
    baseline: tuple[str, list[str]],
    systems: list[tuple[str, list[str]]],
    references: list[str],
    n_samples: int = 1000,
) -> dict[str, float]:
    """p-values of sacreBLEU's paired bootstrap resampling of each system against the baseline."""
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    if not systems:
        return {}
    named = [baseline, *systems]
    test = PairedTest(
        named,
        {"BLEU": BLEU(references=[references])},
        references=None,
        test_type="bs",
        n_samples=n_samples,
    )
    _, scores = test()
    return {
        name: result.p_value
        for name, result in zip(scores["System"][1:], scores["BLEU"][1:], strict=True)
    }


def bleu_by_length(hyps: list[str], refs: list[str], sources: list[str]) -> list[float | None]:
    from sacrebleu.metrics import BLEU

    bleu = BLEU()
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


def compare(
    paths: list[str | Path],
    out_dir: str | Path,
    *,
    baseline: str | None = None,
    n_bootstrap: int = 1000,
    alignment_ids: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Write the comparison files into ``out_dir``; return the table rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [load_record(p) for p in discover_runs(paths)]
    unique_labels(records)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scored = [r for r in records if r.scored and _hyps(r) is not None]

    texts = _test_texts(scored[0]) if scored else None
    pvalues: dict[str, float] = {}
    base = None
    if scored and texts is not None:
        labels = [r.label for r in scored]
        if baseline is not None and baseline not in labels:
            raise ValueError(
                f"baseline {baseline!r} is not a scored run; scored runs: {', '.join(labels)}"
            )
        base = next(
            r
            for r in scored
            if r.label == (baseline or ("none" if "none" in labels else labels[0]))
        )
        refs = texts[1]
        usable = [r for r in scored if len(_hyps(r)) == len(refs)]
        if base in usable and n_bootstrap > 0:
            pvalues = paired_bootstrap(
                (base.label, _hyps(base)),
                [(r.label, _hyps(r)) for r in usable if r is not base],
                refs,
                n_samples=n_bootstrap,
            )

    rows = []
    for r in records:
        m = r.metrics
        rows.append(
            {
                "variant": r.label,
                "status": r.status,
                "params": m.get("params"),
                "steps": m.get("steps"),
                "train_time_s": m.get("train_time_s"),
                "tokens_per_s": m.get("train_tokens_per_sec"),
                "val_bleu": m.get("val_bleu"),
                "test_bleu": m.get("test_bleu"),
                "test_chrf": m.get("test_chrf"),
                "beam": m.get("beam_size"),
                "p_vs_baseline": (
                    "baseline"
                    if base is not None and r is base
                    else (round(pvalues[r.label], 4) if r.label in pvalues else None)
                ),
                "signature": m.get("sacrebleu_signature"),
                "error": m.get("error") if r.status == "failed" else None,
                "run_dir": str(r.path),
            }
        )
    rank = {"finished": 0, "diverged": 1}  # then failed and unfinished runs
    rows.sort(key=lambda row: (rank.get(row["status"], 2), -(row["test_bleu"] or 0)))
    _write_table(rows, out_dir, base.label if base else None)

    # validation BLEU against training time
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for r in records:
        if r.history:
            ax.plot(
                [h["train_time"] for h in r.history],
                [h["val_bleu"] for h in r.history],
                marker=".",
                label=r.label,
            )
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("validation BLEU (greedy)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "curves.png")
    plt.close(fig)

    # test BLEU by source length
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    if texts is not None:
        sources, refs = texts
        counts = [
            sum(low <= len(s.split()) <= high for s in sources) for low, high in LENGTH_BUCKETS
        ]
        names = [f"{low}-{high}" if high < 10_000 else f"{low}+" for low, high in LENGTH_BUCKETS]
        for r in scored:
            hyps = _hyps(r)
            if len(hyps) == len(refs):
                ax.plot(
                    names,
                    [np.nan if v is None else v for v in bleu_by_length(hyps, refs, sources)],
                    marker="o",
                    label=r.label,
                )
        ax.set_xticks(
            range(len(names)), [f"{n}\n({c})" for n, c in zip(names, counts, strict=True)]
        )
    ax.set_xlabel("source length in words (sentences)")
    ax.set_ylabel("test BLEU")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "bleu_by_length.png")
    plt.close(fig)

    _alignment_grid(scored, out_dir / "alignments.png", alignment_ids or [0, 1])
    return rows


def _write_table(rows: list[dict], out_dir: Path, baseline: str | None) -> None:
    columns = list(rows[0].keys()) if rows else []
    with open(out_dir / "comparison.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    shown = [
        "variant",
        "status",
        "params",
        "steps",
        "train_time_s",
        "tokens_per_s",
        "val_bleu",
        "test_bleu",
        "test_chrf",
        "p_vs_baseline",
    ]
    fmt = lambda v: "" if v is None else (f"{v:,}" if isinstance(v, int) else str(v))  # noqa: E731
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    lines += ["| " + " | ".join(fmt(row[c]) for c in shown) + " |" for row in rows]
    notes = []
    if baseline:
        notes.append(
            f"p_vs_baseline: sacreBLEU paired bootstrap resampling against `{baseline}` (p < 0.05: significant)."
        )
    signatures = sorted({row["signature"] for row in rows if row["signature"]})
    if signatures:
        notes.append("BLEU signature: " + "; ".join(f"`{s}`" for s in signatures))
    for row in rows:
        if row["status"] == "failed":
            notes.append(f"FAILED `{row['variant']}` ({row['run_dir']}): {row['error']}")
        elif row["status"] == "diverged":
            notes.append(
                f"DIVERGED `{row['variant']}` ({row['run_dir']}): stopped on non-finite losses; "
                "scored on its best checkpoint"
            )
        elif row["status"] == "unfinished":
            notes.append(
                f"UNFINISHED `{row['variant']}` ({row['run_dir']}): no final metrics (still running or killed)"
            )
    (out_dir / "comparison.md").write_text(
        "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n", encoding="utf-8"
    )


def _alignment_grid(records: list[RunRecord], path: Path, sentence_ids: list[int]) -> None:
    import matplotlib.pyplot as plt

    panels = []
    for r in records:
        npz, index = r.path / "alignments" / "test.npz", r.path / "alignments" / "test.jsonl"
        if npz.is_file() and index.is_file():
            entries = {
                e["id"]: e for e in map(json.loads, index.read_text(encoding="utf-8").splitlines())
            }
            with np.load(npz) as data:
                panels.append(
                    (
                        r.label,
                        {
                            i: (data[str(i)], entries[i])
                            for i in sentence_ids
                            if str(i) in data.files
                        },
                    )
                )
    if not panels:
        fig, ax = plt.subplots(figsize=(4, 1.5), dpi=100)
        ax.axis("off")
        ax.text(
            0.5,
            0.5,
            "no alignments dumped (train with dump_alignments=true)",
            ha="center",
            va="center",
            fontsize=8,
        )
        fig.savefig(path)
        plt.close(fig)
        return
    fig, axes = plt.subplots(
        len(sentence_ids),
        len(panels),
        figsize=(3.2 * len(panels), 3.2 * len(sentence_ids)),
        dpi=90,
        squeeze=False,
    )
    for col, (label, matrices) in enumerate(panels):
        for row, sid in enumerate(sentence_ids):
            ax = axes[row][col]
            if sid not in matrices:
                ax.axis("off")
                continue
            matrix, entry = matrices[sid]
            ax.imshow(matrix, cmap="Greys", vmin=0, aspect="auto")
            ax.set_xticks(
                range(len(entry["src_tokens"])), entry["src_tokens"], rotation=90, fontsize=5
            )
            ax.set_yticks(range(len(entry["tgt_tokens"])), entry["tgt_tokens"], fontsize=5)
            ax.set_title(f"{label} #{sid}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
