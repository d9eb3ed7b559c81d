"""seq2seq-compare: variants over seeds on fake run directories (hand-computed numbers), and on\nreal tiny runs (a multirun sweep, a failed run)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seq2seq.compare import compare, variant_label
from seq2seq.evaluation.alignments import words_of
from tests.conftest import TINY, TINY_RNN, needs_multi30k


def train_cli(*args: str, multirun: bool = False) -> subprocess.CompletedProcess:
    flags = ["-m"] if multirun else []  # Hydra wants its flags before the overrides
    return subprocess.run(
        [sys.executable, "-m", "seq2seq.cli.train", *flags, *TINY, *TINY_RNN, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )


def test_variant_labels():
    assert variant_label({"model": {"name": "transformer"}}) == "transformer"
    assert (
        variant_label(
            {"model": {"name": "rnn"}, "attention": {"name": "multiplicative", "score": "dot"}}
        )
        == "multiplicative/dot"
    )
    assert (
        variant_label(
            {
                "model": {"name": "rnn"},
                "attention": {"name": "local", "mode": "monotonic", "score": "general"},
            }
        )
        == "local-m/general"
    )
    assert (
        variant_label(
            {"model": {"name": "rnn"}, "attention": {"name": "additive", "wiring": "luong"}}
        )
        == "additive (luong)"
    )


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run directories"):
        compare([tmp_path], tmp_path / "out")


@needs_multi30k
@pytest.mark.slow
def test_multirun_sweep_and_failed_run_compare(shared_cache, tmp_path):
    sweep = tmp_path / "sweep"
    result = train_cli(
        "attention=none,additive",
        f"data.cache_dir={shared_cache}",
        f"hydra.sweep.dir={sweep}",
        "dump_alignments=true",
        multirun=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    # a failure inside the run (bad values are refused before a run directory exists)
    failed = train_cli(
        f"data.cache_dir={shared_cache}",
        f"hydra.run.dir={sweep / 'failed'}",
        f"data.dir={tmp_path / 'missing'}",
    )
    assert failed.returncode == 1 and "error: data directory" in failed.stderr

    # a run stopped on non-finite losses: scored on its best checkpoint, flagged as diverged
    diverged = sweep / "diverged"
    shutil.copytree(next(sweep.glob("*_rnn_none")), diverged)
    metrics = json.loads((diverged / "metrics.json").read_text())
    metrics.update(status="diverged", stop_reason="3 consecutive non-finite losses")
    (diverged / "metrics.json").write_text(json.dumps(metrics))

    out = tmp_path / "report"
    rows = compare([sweep], out, n_bootstrap=50, html=out / "comparison.html")
    for name in (
        "comparison.html",
        "comparison.md",
        "comparison.csv",
        "runs.csv",
        "bleu_by_length.png",
        "curves.png",
        "alignments.png",
    ):
        assert (out / name).is_file(), name
    for name in ("bleu_by_length.png", "curves.png", "alignments.png"):
        with Image.open(out / name) as image:
            image.verify()
    # one row per run in runs.csv; the failed run and the diverged copy are seed 1234 again
    assert sorted((r["variant"], r["status"], r["seed"]) for r in rows) == [
        ("additive", "failed", 1234),
        ("additive", "finished", 1234),
        ("none", "diverged", 1234),
        ("none", "finished", 1234),
    ]
    assert [r["status"] for r in rows] == ["finished", "finished", "diverged", "failed"]
    runs = list(csv.DictReader((out / "runs.csv").open()))
    assert len(runs) == 4
    finished = [r for r in runs if r["status"] == "finished"]
    assert {r["variant"] for r in finished} == {"none", "additive"}
    assert all(float(r["test_bleu"]) >= 0 and int(r["steps"]) == 4 for r in finished)
    assert [r["p_vs_baseline"] for r in finished if r["variant"] == "none"] == ["baseline"]
    assert 0 <= float(next(r for r in finished if r["variant"] == "additive")["p_vs_baseline"]) <= 1
    # one row per variant in comparison.csv: one scored seed each, paired at seed 1234
    table = {r["variant"]: r for r in csv.DictReader((out / "comparison.csv").open())}
    assert sorted(table) == ["additive", "none"]
    assert table["none"]["baseline"] == "True" and table["none"]["n"] == "1"
    assert table["additive"]["n"] == "1" and table["additive"]["tested_seeds"] == "1"
    assert table["additive"]["p_per_seed"].startswith("1234:")
    assert float(table["additive"]["entropy"]) >= 0 and table["none"]["entropy"] == ""
    md = (out / "comparison.md").read_text()
    assert "FAILED `additive` seed 1234" in md and "does not exist" in md
    assert "DIVERGED `none` seed 1234" in md and "DUPLICATE `none` seed 1234" in md
    assert "(n=1, no interval)" in md and "Budget: in updates" in md
    # the page's viewer holds additive's real dump at word level (none has no weights)
    page = (out / "comparison.html").read_text(encoding="utf-8")
    viewer = json.loads(page.split('id="viewer-data">')[1].split("</script>")[0])
    (panel,) = viewer["panels"]
    with np.load(sweep / panel["run"] / "alignments" / "test.npz") as data:
        dumped = {int(k): data[k].shape for k in data.files}
    index = (sweep / panel["run"] / "alignments" / "test.jsonl").read_text().splitlines()
    assert panel["variant"] == "additive" and len(dumped) == len(index) > 1
    assert [s["id"] for s in viewer["sentences"]] == list(range(min(50, len(index))))
    for line in index[:50]:
        entry = json.loads(line)
        matrix = panel["matrices"][str(entry["id"])]
        assert dumped[entry["id"]] == (len(entry["tgt_tokens"]), len(entry["src_tokens"]))
        assert (matrix["src"], matrix["tgt"]) == (
            words_of(entry["src_tokens"]),
            words_of(entry["tgt_tokens"]),
        )
        assert np.array(matrix["w"]).shape == (len(matrix["tgt"]), len(matrix["src"]))


@needs_multi30k
@pytest.mark.slow
def test_failed_job_does_not_kill_the_sweep(shared_cache, tmp_path):
    sweep = tmp_path / "sweep"
    result = train_cli(
        "optim.lr=-1,0.003",
        f"data.cache_dir={shared_cache}",
        f"hydra.sweep.dir={sweep}",
        multirun=True,
    )
    # every job ran; the exit status and the last line say one failed
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == "1 finished, 0 resumed, 1 failed"
    statuses = sorted(
        json.loads(p.read_text())["status"] for p in Path(sweep).glob("*/metrics.json")
    )
    assert statuses == ["failed", "finished"]


# --- fake run directories: no training, hand-computed numbers ---------------------------------

TEST_SOURCES = [
    "ein hund",
    "eine katze sitzt",
    "ein mann fährt ein rotes auto",
    "zwei kinder spielen im park mit einem ball",
    "frau",
    "ein alter mann liest eine zeitung auf einer bank im park",
]
TEST_REFERENCES = [
    "a dog",
    "a cat sits",
    "a man drives a red car",
    "two children play with a ball in the park",
    "woman",
    "an old man reads a newspaper on a bench in the park",
]


def write_corpus(root: Path) -> Path:
    """A tiny local corpus in ``root`` whose test split the report reads its references from."""
    root.mkdir()
    for stem in ("train", "val", "test"):
        (root / f"{stem}.de").write_text("".join(s + "\n" for s in TEST_SOURCES))
        (root / f"{stem}.en").write_text("".join(s + "\n" for s in TEST_REFERENCES))
    return root


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "corpus")


def fake_run(
    root: Path,
    name: str,
    corpus: Path,
    *,
    attention: str = "additive",
    options: dict | None = None,
    seed: int = 1,
    status: str = "finished",
    bleu: float = 20.0,
    chrf: float = 40.0,
    history: list[dict] | None = None,
    matrices: list[tuple] | None = None,
    data_name: str = "toy",
    **metrics,
) -> Path:
    """A run directory as seq2seq-train leaves it: .hydra/config.yaml, metrics.json,
    history.jsonl, hyps/test.txt and (``matrices``: per sentence (weights, source pieces) or
    (weights, source pieces, target pieces)) alignments/test.npz + test.jsonl."""
    import numpy as np
    from omegaconf import OmegaConf

    run = root / name
    (run / ".hydra").mkdir(parents=True)
    config = {
        "data": {
            "name": data_name,
            "src": "de",
            "tgt": "en",
            "languages": ["de", "en"],
            "dir": str(corpus),
            "hub_id": None,
            "files": {"train": "train", "validation": "val", "test": "test"},
            "hub_splits": {},
            "train_limit": None,
            "eval_limit": None,
            "cache_dir": str(root / "cache"),
        },
        "model": {"name": "rnn", "cell": "gru", "emb_size": 16, "hidden_size": 24},
        "attention": {"name": attention, "wiring": None, **(options or {})},
        "trainer": {
            "seed": seed,
            "max_steps": 4,
            "max_epochs": None,
            "max_time": None,
            "precision": "fp32",
        },
        "decode": {"beam_size": 2, "alpha": 0.6},
    }
    OmegaConf.save(OmegaConf.create(config), run / ".hydra" / "config.yaml")
    if status == "failed":
        record = {"status": "failed", "error": "boom", "model": "rnn", "attention": attention}
    else:
        record = {
            "status": status,
            "model": "rnn",
            "attention": attention,
            "steps": 4,
            "train_time_s": 10.0,
            "train_tokens_per_sec": 100.0,
            "val_bleu": bleu,
            "test_bleu": bleu,
            "test_chrf": chrf,
            "beam_size": 2,
            "precision": "fp32",
            "sacrebleu_signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
            **metrics,
        }
        # each line marks its variant and seed, so the pairing is visible in the hypotheses
        hyps = [f"{ref} {attention} s{seed}" for ref in TEST_REFERENCES]
        (run / "hyps").mkdir()
        (run / "hyps" / "test.txt").write_text("".join(h + "\n" for h in hyps))
    (run / "metrics.json").write_text(json.dumps(record))
    if history is not None:
        (run / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    if matrices is not None:
        (run / "alignments").mkdir()
        np.savez_compressed(
            run / "alignments" / "test.npz",
            **{str(i): np.array(m, dtype=np.float32) for i, (m, *_) in enumerate(matrices)},
        )
        (run / "alignments" / "test.jsonl").write_text(
            "".join(
                json.dumps(
                    {
                        "id": i,
                        "src_tokens": src,
                        "tgt_tokens": tgt[0] if tgt else [f"t{j}" for j in range(len(m))],
                        "shape": [len(m), len(src)],
                    }
                )
                + "\n"
                for i, (m, src, *tgt) in enumerate(matrices)
            )
        )
    return run


def history(seed: int, offset: float) -> list[dict]:
    return [
        {
            "step": step,
            "train_time": step * 1.5 + seed,
            "val_loss": 5 - step + offset,
            "val_bleu": step + offset,
        }
        for step in (2, 4)
    ]


ONE_HOT = ([[1, 0, 0], [0, 1, 0], [0, 0, 1]], ["▁a", "▁b", "</s>"])  # entropy 0, max 1, EOS 1/3
UNIFORM = ([[0.25] * 4, [0.25] * 4], ["▁a", "▁b", "▁c", "</s>"])  # entropy 1, max 1/4, EOS 1/4


@pytest.fixture
def sweep(tmp_path, corpus) -> Path:
    """2 variants x 2 seeds, and a failed third seed of additive.

    test BLEU: none 20, 22; additive 24, 27 (paired differences 4 and 5); chrF: none 40, 44;
    additive 50, 52; additive's alignments: seed 1 one-hot, seed 2 uniform; test_aer 0.3, 0.5.
    """
    root = tmp_path / "sweep"
    fake_run(
        root, "0_none_s1", corpus, attention="none", seed=1, bleu=20, chrf=40, history=history(1, 0)
    )
    fake_run(
        root,
        "1_additive_s1",
        corpus,
        seed=1,
        bleu=24,
        chrf=50,
        history=history(1, 2),
        matrices=[ONE_HOT],
        test_aer=0.3,
    )
    fake_run(
        root, "2_none_s2", corpus, attention="none", seed=2, bleu=22, chrf=44, history=history(2, 1)
    )
    fake_run(
        root,
        "3_additive_s2",
        corpus,
        seed=2,
        bleu=27,
        chrf=52,
        history=history(2, 3),
        matrices=[UNIFORM],
        test_aer=0.5,
    )
    fake_run(root, "4_additive_s3", corpus, seed=3, status="failed")
    return root


def test_report_over_seeds_on_fake_runs(sweep, tmp_path, monkeypatch):
    from seq2seq.compare import report

    calls = []
    real = report.paired_bootstrap

    def spy(baseline, systems, references, n_samples, tokenize):
        assert tokenize == "13a"  # the runs' bleu_tokenize (runs before the option: 13a)
        calls.append((baseline[0], baseline[1][0], [(name, hyps[0]) for name, hyps in systems]))
        return real(baseline, systems, references, n_samples=n_samples, tokenize=tokenize)

    monkeypatch.setattr(report, "paired_bootstrap", spy)
    out = tmp_path / "report"
    rows = compare([sweep], out, n_bootstrap=20)

    # per-seed pairing: seed 1 against seed 1, seed 2 against seed 2, each once
    assert calls == [
        ("none", "a dog none s1", [("additive", "a dog additive s1")]),
        ("none", "a dog none s2", [("additive", "a dog additive s2")]),
    ]
    assert [(r["variant"], r["seed"], r["status"]) for r in rows] == [
        ("none", 1, "finished"),
        ("none", 2, "finished"),
        ("additive", 1, "finished"),
        ("additive", 2, "finished"),
        ("additive", 3, "failed"),
    ]
    assert [r["p_vs_baseline"] for r in rows][:2] == ["baseline", "baseline"]

    table = {r["variant"]: r for r in csv.DictReader((out / "comparison.csv").open())}
    none, additive = table["none"], table["additive"]
    t1 = 12.7062  # Student t, 0.975 quantile, 1 degree of freedom
    assert none["baseline"] == "True" and none["n"] == "2" and none["seeds"] == "1 2"
    assert float(none["test_bleu_mean"]) == 21.0
    assert float(none["test_bleu_sd"]) == pytest.approx(2**0.5, abs=1e-4)
    # half width t * sd / sqrt(n) = 12.7062 * sqrt(2) / sqrt(2)
    assert float(none["test_bleu_ci_low"]) == pytest.approx(21 - t1, abs=1e-4)
    assert float(none["test_bleu_ci_high"]) == pytest.approx(21 + t1, abs=1e-4)
    assert float(none["test_chrf_mean"]) == 42.0
    assert float(none["test_chrf_sd"]) == pytest.approx(8**0.5, abs=1e-4)
    assert additive["n"] == "2" and additive["failed_seeds"] == "3"
    assert float(additive["test_bleu_mean"]) == 25.5
    assert float(additive["test_bleu_sd"]) == pytest.approx(4.5**0.5, abs=1e-4)
    assert float(additive["test_bleu_ci_high"]) == pytest.approx(25.5 + t1 * 1.5, abs=1e-4)
    # paired differences 4 and 5: mean 4.5, sd sqrt(0.5), half width 12.7062 * 0.5
    assert additive["diff_per_seed"] == "1:4.0000 2:5.0000"
    assert float(additive["diff_vs_baseline_mean"]) == 4.5
    assert float(additive["diff_vs_baseline_sd"]) == pytest.approx(0.5**0.5, abs=1e-4)
    assert float(additive["diff_vs_baseline_ci_low"]) == pytest.approx(4.5 - t1 / 2, abs=1e-4)
    assert float(additive["diff_vs_baseline_ci_high"]) == pytest.approx(4.5 + t1 / 2, abs=1e-4)
    assert additive["tested_seeds"] == "2" and additive["paired_seeds"] == "2"
    pvalues = dict(item.split(":") for item in additive["p_per_seed"].split())
    assert sorted(pvalues) == ["1", "2"] and all(0 < float(p) <= 1 for p in pvalues.values())
    assert int(additive["significant_seeds"]) == sum(float(p) < 0.05 for p in pvalues.values())
    # diagnostics: mean over seeds of (one-hot, uniform)
    assert float(additive["entropy"]) == pytest.approx(0.5, abs=1e-4)
    assert float(additive["max_weight"]) == pytest.approx(0.625, abs=1e-4)
    assert float(additive["saturated"]) == pytest.approx(0.5, abs=1e-4)
    assert float(additive["eos_mass"]) == pytest.approx((1 / 3 + 1 / 4) / 2, abs=1e-4)
    assert float(additive["test_aer"]) == pytest.approx(0.4)
    assert none["entropy"] == none["eos_mass"] == none["test_aer"] == ""  # no weights
    assert float(additive["tokens_per_s_mean"]) == 100.0

    md = (out / "comparison.md").read_text()
    held = md.splitlines()[0]
    assert held.startswith("Held fixed: ")
    for fixed in (
        "data: toy de-en",
        "model: rnn(cell=gru, emb_size=16, hidden_size=24)",
        "budget: max_steps=4",
        "precision: fp32",
        "decode: beam=2, alpha=0.6",
        "bleu: tokenize=13a",
    ):
        assert fixed in held
    # both variants' papers wire bahdanau; the scored seeds are 1 and 2 (additive's 3 failed)
    assert "wiring: bahdanau" in held and "seeds: 1, 2" in held
    assert "Budget: in updates" in md
    header = next(line for line in md.splitlines() if line.startswith("| variant"))
    assert header.endswith("| EOS mass | test AER |")  # nothing differs; no run has gold_aer
    assert "| none | 2 | 21.00 ± 1.41 [8.29, 33.71] | 42.00 ± 2.83 | baseline |" in md
    assert (
        "| additive | 2 | 25.50 ± 2.12 [6.44, 44.56] | 51.00 ± 1.41 | 4.50 ± 0.71 [-1.85, 10.85] |"
        in md
    )
    assert "FAILED `additive` seed 3" in md and ": boom" in md
    assert "Kendall's tau-b" in md and "mean 1.000, min 1.000 over 1 seed pair(s)" in md
    assert "Speed (not a quality figure)" in md and "BLEU signature" in md
    for name in ("curves.png", "bleu_by_length.png", "alignments.png"):
        with Image.open(out / name) as image:
            image.verify()


def test_curves_against_updates_only_when_the_budget_was_in_updates():
    from seq2seq.compare.runs import RunRecord, budget_axis

    def run(max_steps, max_time, stopped_by):
        config = {"trainer": {"max_steps": max_steps, "max_time": max_time}}
        return RunRecord(Path("r"), "finished", "x", config, {"stopped_by": stopped_by})

    assert budget_axis([run(4, None, "max_steps"), run(4, None, "early_stopping")]) == "updates"
    assert budget_axis([run(4, 1080, "max_steps")]) == "updates"  # the time cap never bound
    assert budget_axis([run(4, 1080, "max_steps"), run(4, 1080, "max_time")]) == "time"
    assert budget_axis([run(None, 600, "max_time")]) == "time"
    assert budget_axis([run(4, 1080, None)]) == "time"  # not recorded: not claimed


def test_kendall_tau_b_by_hand():
    from seq2seq.compare import kendall_tau_b, ranking_stability

    assert kendall_tau_b([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(2 / 3)  # 5 - 1 of 6 pairs
    assert kendall_tau_b([1, 2, 3], [3, 2, 1]) == -1
    # ties: 4 concordant pairs, 5 untied pairs on each side -> 4 / sqrt(5 * 5)
    assert kendall_tau_b([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8)
    assert kendall_tau_b([1, 1], [1, 2]) is None and kendall_tau_b([1], [1]) is None
    stability = ranking_stability(
        {
            1: {"a": 1, "b": 2, "c": 3},
            2: {"a": 1, "b": 3, "c": 2},  # against seed 1: (1 - 1 + 1) / 3
            3: {"a": 3, "b": 2, "c": 1},  # reversed seed 1; against seed 2: -1/3
            4: {"a": 1},  # one variant: no pair
        }
    )
    assert stability.taus == pytest.approx({(1, 2): 1 / 3, (1, 3): -1.0, (2, 3): -1 / 3})
    assert stability.mean == pytest.approx(-1 / 3) and stability.min == -1


def test_mean_sd_and_t_interval():
    from seq2seq.compare import summarize, t_975

    # the printed tables' 4-digit values (scipy's quantiles, exact)
    assert t_975(1) == pytest.approx(12.7062, abs=5e-5)
    assert t_975(4) == pytest.approx(2.7764, abs=5e-5)
    assert t_975(60) == pytest.approx(2.000298, abs=1e-6)
    s = summarize([20, 22, 27])
    assert s.n == 3 and s.mean == 23 and s.sd == pytest.approx(13**0.5)
    assert s.high - s.mean == pytest.approx(t_975(2) * 13**0.5 / 3**0.5)
    assert t_975(2) == pytest.approx(4.3027, abs=5e-5)
    one = summarize([5.0])
    assert (one.n, one.mean, one.sd, one.low, one.high) == (1, 5.0, None, None, None)
    assert summarize([]).n == 0


def test_attention_diagnostics_of_hand_made_matrices(tmp_path, corpus):
    from seq2seq.compare import attention_diagnostics, matrix_rows

    rows = matrix_rows([[1, 0, 0], [0, 1, 0]])
    assert rows["entropy"].tolist() == [0, 0] and rows["max_weight"].tolist() == [1, 1]
    assert matrix_rows([[0.5, 0.5]])["entropy"].tolist() == pytest.approx([1.0])
    run = fake_run(tmp_path, "run", corpus, matrices=[ONE_HOT, UNIFORM])
    # pooled over the 5 rows: entropies 0 0 0 1 1, max 1 1 1 .25 .25, EOS weights 0 0 1 .25 .25
    got = attention_diagnostics(run / "alignments")
    assert {k: got[k] for k in ("entropy", "max_weight", "saturated", "eos_mass", "rows")} == (
        pytest.approx(
            {"entropy": 0.4, "max_weight": 0.7, "saturated": 0.6, "eos_mass": 0.3, "rows": 5}
        )
    )
    assert attention_diagnostics(tmp_path / "nowhere") is None


def test_broken_run_is_listed_not_fatal_and_the_cli_prints_the_report(tmp_path, corpus, capsys):
    from seq2seq.cli.compare import main

    root = tmp_path / "runs"
    fake_run(root, "good", corpus, seed=1, bleu=20)
    fake_run(root, "dot", corpus, attention="multiplicative", options={"score": "dot"}, bleu=25)
    broken = fake_run(root, "broken", corpus, seed=2)
    (broken / "metrics.json").write_text('{"status": "finished", "test_bl')
    out = tmp_path / "report"
    main([str(root), "--out", str(out), "--bootstrap", "0"])
    printed = capsys.readouterr().out
    assert "| additive | 1 | 20.00 (n=1, no interval) |" in printed
    assert "BROKEN `additive` seed 2" in printed and "unreadable metrics.json:" in printed
    assert "2 finished, 1 broken" in printed
    header = next(line for line in printed.splitlines() if line.startswith("| variant"))
    assert header.endswith("| wiring |")  # the wiring differs: a column, not a held-fixed item
    assert "| multiplicative/dot | 1 | 25.00 (n=1, no interval) |" in printed
    assert printed.splitlines()[0].startswith("Held fixed: data: toy de-en")
    runs = {r["run"]: r for r in csv.DictReader((out / "runs.csv").open())}
    assert runs["broken"]["status"] == "broken" and "metrics.json" in runs["broken"]["error"]
    table = list(csv.DictReader((out / "comparison.csv").open()))
    assert table[0]["broken_seeds"] == "2" and table[0]["n"] == "1"


@pytest.mark.parametrize(
    "name,text",
    [
        ("metrics.json", '{"status": "finished", "test_bl'),
        ("metrics.json", "[1, 2]"),
        ("history.jsonl", '{"step": 2, "val_loss": 3.0}\n{"step": 4, "val_lo'),
        ("history.jsonl", "[1, 2]\n"),
        (".hydra/config.yaml", "model: {name: rnn\nattention: [additive\n"),
        (".hydra/config.yaml", "- a list\n"),
    ],
    ids=[
        "metrics-truncated",
        "metrics-not-object",
        "history-truncated",
        "history-not-objects",
        "config-truncated",
        "config-not-mapping",
    ],
)
def test_each_corrupt_file_makes_its_run_broken_and_the_report_still_builds(
    name, text, tmp_path, corpus, capsys
):
    """metrics.json, history.jsonl and .hydra/config.yaml: the run is listed as broken with
    the file's name; the others are compared as usual."""
    from seq2seq.cli.compare import main

    root = tmp_path / "runs"
    fake_run(root, "good", corpus, seed=1, bleu=20, history=history(1, 0.0))
    broken = fake_run(root, "broken", corpus, seed=2, bleu=30, history=history(2, 0.0))
    (broken / name).write_text(text)
    out = tmp_path / "report"
    main([str(root), "--out", str(out), "--bootstrap", "0"])
    printed = capsys.readouterr().out
    assert "| additive | 1 | 20.00 (n=1, no interval) |" in printed
    note = next(line for line in printed.splitlines() if line.startswith("BROKEN "))
    assert f"({broken}): unreadable {name}: " in note, note
    assert "1 finished, 1 broken" in printed
    runs = {r["run"]: r for r in csv.DictReader((out / "runs.csv").open())}
    assert runs["broken"]["status"] == "broken" and runs["broken"]["error"].startswith(name)
    assert (out / "comparison.md").is_file() and (out / "curves.png").is_file()


def test_exported_summaries_rebuild_the_same_report(sweep, tmp_path):
    """seq2seq-compare --export keeps what the report needs (no checkpoints): the report of the
    summaries equals the report of the runs, diagnostics included (saved from the full dump)."""
    from seq2seq.compare.export import export_runs

    (sweep / "1_additive_s1" / "checkpoints").mkdir()
    (sweep / "1_additive_s1" / "checkpoints" / "best.pt").write_bytes(b"weights")
    exported = tmp_path / "exported"
    assert len(export_runs([sweep], exported, keep_matrices=1)) == 5
    run = exported / "sweep" / "1_additive_s1"
    assert not (run / "checkpoints").exists()
    assert (run / "alignments" / "test.diagnostics.json").is_file()
    with np.load(run / "alignments" / "test.npz") as data:
        assert data.files == ["0"]
    full = compare([sweep], tmp_path / "a", n_bootstrap=0)
    summary = compare([exported], tmp_path / "b", n_bootstrap=0)
    drop = ("run_dir",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in summary] == [
        {k: v for k, v in r.items() if k not in drop} for r in full
    ]
    table = lambda out: (out / "comparison.csv").read_text(encoding="utf-8")  # noqa: E731
    assert table(tmp_path / "b") == table(tmp_path / "a")


def test_aer_runs_on_another_corpus_fill_a_column_beside_their_variant(sweep, tmp_path, corpus):
    """Reversal-corpus runs give additive an AER column (mean ± sd over their seeds) without
    entering the BLEU table; a failed one and a variant absent from the comparison are noted."""
    reversal = tmp_path / "reversal"
    for seed, aer in ((1, 0.1), (2, 0.2)):
        fake_run(reversal, f"add_s{seed}", corpus, seed=seed, data_name="reverse", test_aer=aer)
    fake_run(reversal, "add_s3", corpus, seed=3, data_name="reverse", status="failed")
    fake_run(
        reversal,
        "dot_s1",
        corpus,
        attention="multiplicative",
        options={"score": "dot"},
        data_name="reverse",
        test_aer=0.9,
    )
    out = tmp_path / "report"
    rows = compare([sweep], out, n_bootstrap=0, aer_paths=[reversal])

    assert {r["variant"] for r in rows} == {"none", "additive"}  # no reversal run among them
    table = {r["variant"]: r for r in csv.DictReader((out / "comparison.csv").open())}
    additive, none = table["additive"], table["none"]
    assert float(additive["aer_reverse_de_en_mean"]) == pytest.approx(0.15)
    assert float(additive["aer_reverse_de_en_sd"]) == pytest.approx(0.0707, abs=1e-4)
    assert additive["aer_reverse_de_en_n"] == "2"
    assert float(additive["test_bleu_mean"]) == 25.5  # BLEU from the main runs only
    assert none["aer_reverse_de_en_n"] == "0" and none["aer_reverse_de_en_mean"] == ""
    md = (out / "comparison.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| variant"))
    assert header.endswith("| test AER | AER on reverse de-en |")
    additive_line = next(line for line in md.splitlines() if line.startswith("| additive |"))
    # half width t(1) * sd / sqrt(2) = 12.7062 * 0.0707 / 1.414 = 0.635
    assert additive_line.endswith("| 0.150 ± 0.071 [-0.485, 0.785] (2) |")
    assert "data: toy de-en" in md.splitlines()[0]  # the reversal runs do not unfix the data
    assert "AER on reverse de-en: test_aer (mean ± sd [95% CI] (n seeds)) of 4 run(s)" in md
    assert "AER run `additive` on reverse de-en seed 3" in md and "failed" in md
    assert "AER run `multiplicative/dot` on reverse de-en: no such variant" in md


def test_compare_cli_takes_aer_runs(sweep, tmp_path, corpus, capsys):
    from seq2seq.cli.compare import main

    reversal = tmp_path / "reversal"
    fake_run(reversal, "add_s1", corpus, seed=1, data_name="reverse", test_aer=0.25)
    main(
        [str(sweep), "--out", str(tmp_path / "r"), "--bootstrap", "0", "--aer-runs", str(reversal)]
    )
    printed = capsys.readouterr().out
    assert "AER on reverse de-en" in printed and "0.250 (1)" in printed


def write_gold_eval(run: Path, name: str, aer: float) -> None:
    target = run / "eval" / name / "metrics.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"aer": aer, "alignment_links": 10, "bleu": 1.0}))


def test_gold_aer_comes_from_the_runs_gold_evaluations(sweep, tmp_path):
    """seq2seq-evaluate ... gold_alignments= leaves eval/<name>/metrics.json with an AER: the
    report's gold AER column; --gold picks one of several; the export keeps them."""
    write_gold_eval(sweep / "1_additive_s1", "gold_encs", 0.40)
    write_gold_eval(sweep / "3_additive_s2", "gold_encs", 0.50)
    write_gold_eval(sweep / "3_additive_s2", "gold_shift", 0.30)
    out = tmp_path / "report"
    compare([sweep], out, n_bootstrap=0)
    table = {r["variant"]: r for r in csv.DictReader((out / "comparison.csv").open())}
    assert float(table["additive"]["gold_aer"]) == pytest.approx(0.40)  # seed 2: ambiguous
    md = (out / "comparison.md").read_text()
    assert "several gold evaluations (gold_encs, gold_shift): pass --gold NAME" in md
    assert next(x for x in md.splitlines() if x.startswith("| variant")).endswith("| gold AER |")

    compare([sweep], out, n_bootstrap=0, gold="gold_encs")
    table = {r["variant"]: r for r in csv.DictReader((out / "comparison.csv").open())}
    assert float(table["additive"]["gold_aer"]) == pytest.approx(0.45)

    from seq2seq.compare.export import export_runs

    export_runs([sweep], tmp_path / "exported")
    compare([tmp_path / "exported"], tmp_path / "again", n_bootstrap=0, gold="gold_encs")
    again = {
        r["variant"]: r for r in csv.DictReader((tmp_path / "again" / "comparison.csv").open())
    }
    assert float(again["additive"]["gold_aer"]) == pytest.approx(0.45)


def mixed_sweep(root: Path, corpus: Path, last_corpus: Path | None = None, **last) -> Path:
    """none and additive at seeds 1 and 2; additive seed 2 made on ``last_corpus`` (default:
    ``corpus``) with ``last``'s options."""
    fake_run(root, "0_none_s1", corpus, attention="none", seed=1, bleu=20)
    fake_run(root, "1_additive_s1", corpus, seed=1, bleu=24)
    fake_run(root, "2_none_s2", corpus, attention="none", seed=2, bleu=22)
    fake_run(root, "3_additive_s2", last_corpus or corpus, seed=2, bleu=30, **last)
    return root


def paired_calls(monkeypatch) -> list:
    from seq2seq.compare import report

    calls = []
    real = report.paired_bootstrap

    def spy(baseline, systems, references, n_samples, tokenize):
        calls.append((baseline[1][0], [name for name, _ in systems], tokenize))
        return real(baseline, systems, references, n_samples=n_samples, tokenize=tokenize)

    monkeypatch.setattr(report, "paired_bootstrap", spy)
    return calls


def test_runs_scored_with_another_tokenizer_are_flagged_and_never_paired(
    tmp_path, corpus, monkeypatch
):
    calls = paired_calls(monkeypatch)
    zh = "nrefs:1|case:mixed|eff:no|tok:zh|smooth:exp|version:2.6.0"
    sweep = mixed_sweep(tmp_path / "mixed", corpus, bleu_tokenize="zh", sacrebleu_signature=zh)
    out = tmp_path / "report"
    rows = compare([sweep], out, n_bootstrap=20)

    md = (out / "comparison.md").read_text()
    assert md.splitlines()[0] == (
        "NOT COMPARABLE: test BLEU scored with different BLEU tokenizers (13a: 3 run(s), zh: 1 "
        "run(s)); ΔBLEU and paired tests only between runs that share both"
    )
    held = md.splitlines()[2]
    assert held.startswith("Held fixed: ") and "bleu:" not in held
    header = next(line for line in md.splitlines() if line.startswith("| variant"))
    assert header.endswith("| bleu |")  # the tokenizer is a column: it varies
    assert "| tokenize=13a; tokenize=zh |" in md  # additive's runs
    # seed 1 is paired (both 13a); seed 2's additive (zh) against none (13a) is not
    table = {r["variant"]: r for r in csv.DictReader((out / "comparison.csv").open())}
    assert table["additive"]["diff_per_seed"] == "1:4.0000"
    assert table["additive"]["paired_seeds"] == "1"
    assert calls == [("a dog none s1", ["additive"], "13a"), ("a dog none s2", [], "13a")]
    assert [r["bleu"] for r in rows] == ["tokenize=13a"] * 3 + ["tokenize=zh"]


def test_runs_against_other_test_references_are_flagged_and_never_paired(
    tmp_path, corpus, monkeypatch
):
    calls = paired_calls(monkeypatch)
    other = tmp_path / "other_corpus"
    shutil.copytree(corpus, other)
    (other / "test.en").write_text("".join(f"{r} again\n" for r in TEST_REFERENCES))
    sweep = mixed_sweep(tmp_path / "mixed", corpus, other, data_name="toy2")
    out = tmp_path / "report"
    compare([sweep], out, n_bootstrap=20)

    first = (out / "comparison.md").read_text().splitlines()[0]
    assert first == (
        "NOT COMPARABLE: test BLEU scored with 2 different test reference sets (toy de-en: 3 "
        "run(s), toy2 de-en: 1 run(s)); ΔBLEU and paired tests only between runs that share both"
    )
    table = {r["variant"]: r for r in csv.DictReader((out / "comparison.csv").open())}
    assert table["additive"]["diff_per_seed"] == "1:4.0000"
    assert calls == [("a dog none s1", ["additive"], "13a"), ("a dog none s2", [], "13a")]


def test_a_run_saved_before_the_data_spec_shares_the_test_references_of_a_new_one():
    """Runs of one sweep before and after an upgrade are paired: fields the old config lacks
    count as their defaults, and where the local copy lies is not part of the key."""
    from types import SimpleNamespace

    from seq2seq.compare.report import ReferenceTexts

    old = {"name": "multi30k", "src": "de", "tgt": "en", "dir": "${local_corpus:multi30k}"}
    old |= {"files": {"test": "test_2016_flickr"}, "eval_limit": None, "hub_id": "x/m30k"}
    new = old | {
        "dir": "${local_corpus:multi30k,${.hub_id},x/m30k}",
        "format": "text",
        "columns": {},
        "carve": {"validation": 0, "test": 0, "seed": 1},
        "load_kwargs": {},
        "hub_config": None,
        "revision": None,
    }
    key = ReferenceTexts.key
    assert key(SimpleNamespace(config={"data": old})) == key(SimpleNamespace(config={"data": new}))
    carved = new | {"carve": {"validation": 0, "test": 500, "seed": 1}}
    assert key(SimpleNamespace(config={"data": carved})) != key(
        SimpleNamespace(config={"data": new})
    )
