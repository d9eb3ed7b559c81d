"""seq2seq-compare's report: variants over seeds on fake run directories (hand-computed
numbers), and on real tiny runs (a multirun sweep, a failed run)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from seq2seq.compare import compare
from seq2seq.evaluation.alignments import words_of
from tests.cli.runner import run_command
from tests.compare.fake_runs import fake_run, history
from tests.conftest import needs_multi30k, tiny_overrides


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run directories"):
        compare([tmp_path], tmp_path / "out")


@needs_multi30k
@pytest.mark.slow
def test_multirun_sweep_and_failed_run_compare(shared_cache, tmp_path):
    sweep = tmp_path / "sweep"
    result = run_command(
        "train",
        "-m",
        *tiny_overrides(
            shared_cache,
            "attention=none,additive",
            f"hydra.sweep.dir={sweep}",
            "dump_alignments=true",
        ),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    # a failure inside the run (bad values are refused before a run directory exists)
    failed = run_command(
        "train",
        *tiny_overrides(
            shared_cache, f"hydra.run.dir={sweep / 'failed'}", f"data.dir={tmp_path / 'missing'}"
        ),
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
    result = run_command(
        "train",
        "-m",
        *tiny_overrides(shared_cache, "optim.lr=-1,0.003", f"hydra.sweep.dir={sweep}"),
    )
    # every job ran; the exit status and the last line say one failed
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == "1 finished, 0 resumed, 1 failed"
    statuses = sorted(
        json.loads(p.read_text())["status"] for p in Path(sweep).glob("*/metrics.json")
    )
    assert statuses == ["failed", "finished"]


def test_report_over_seeds_on_fake_runs(sweep, tmp_path, monkeypatch):
    from seq2seq.compare import scoring

    calls = []
    real = scoring.paired_bootstrap

    def spy(baseline, systems, references, n_samples, tokenize):
        assert tokenize == "13a"  # the runs' bleu_tokenize (runs before the option: 13a)
        calls.append((baseline[0], baseline[1][0], [(name, hyps[0]) for name, hyps in systems]))
        return real(baseline, systems, references, n_samples=n_samples, tokenize=tokenize)

    monkeypatch.setattr(scoring, "paired_bootstrap", spy)
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
    # the paired t test over the two seeds (differences 4 and 5), a family of one for Holm
    t_test = stats.ttest_rel([24.0, 27.0], [20.0, 22.0])
    assert float(additive["p_t_vs_baseline"]) == pytest.approx(t_test.pvalue, abs=1e-4)
    assert additive["p_holm_vs_baseline"] == additive["p_t_vs_baseline"]
    assert additive["direction_vs_baseline"] == ""  # two variants: no omnibus, no claim
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
    assert "| none | 2 | 21.00 ± 1.41 [8.29, 33.71] | 42.00 ± 2.83 |  |  | baseline |  |  |" in md
    p = f"{t_test.pvalue:.3f}"
    assert (
        "| additive | 2 | 25.50 ± 2.12 [6.44, 44.56] | 51.00 ± 1.41 |  |  | "
        f"4.50 ± 0.71 [-1.85, 10.85] | {p}; {p} |  |" in md
    )
    assert "FAILED `additive` seed 3" in md and ": boom" in md
    assert "MISSING `none` seed(s) 3: no run directory" in md
    # one attention score (`none` has no weights): no ranking among the scores, no omnibus
    assert "Ranking stability: not computed" in md and "Omnibus over every variant: not" in md
    assert "Speed (not a quality figure)" in md and "BLEU signature" in md
    for name in ("curves.png", "bleu_by_length.png", "alignments.png"):
        with Image.open(out / name) as image:
            image.verify()


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
