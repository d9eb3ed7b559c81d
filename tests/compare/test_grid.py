"""A half-done grid: the report names every job its sweep (multirun.yaml) still lacks,
including variants with no run at all, from the runs or from their exported summaries."""

from __future__ import annotations

from omegaconf import OmegaConf

from seq2seq.compare import compare
from seq2seq.compare.export import export_runs
from seq2seq.compare.grid import missing_jobs, sweep_params

JOBS = {
    "0_none_s1": ("none", 1),
    "1_additive_s1": ("additive", 1),
    "2_none_s2": ("none", 2),
    "3_additive_s2": ("additive", 2),
    "4_additive_s3": ("additive", 3),  # failed: held, the report has its own line for it
}


def as_sweep(sweep, params: dict, task: list[str]) -> None:
    """Give the fake sweep what Hydra writes: each job's overrides and the sweep's definition."""
    for name, (variant, seed) in JOBS.items():
        overrides = [f"trainer.seed={seed}", f"variant={variant}", "trainer.num_threads=1"]
        OmegaConf.save(OmegaConf.create(overrides), sweep / name / ".hydra" / "overrides.yaml")
    multirun = {"hydra": {"sweeper": {"params": params}, "overrides": {"task": task}}}
    OmegaConf.save(OmegaConf.create(multirun), sweep / "multirun.yaml")


def test_the_command_lines_sweep_fills_the_presets_unset_key(sweep):
    as_sweep(sweep, {"trainer.seed": "1,2,3", "variant": "???"}, ["variant=none,additive,dot"])
    assert sweep_params(sweep / "multirun.yaml") == {
        "trainer.seed": ["1", "2", "3"],
        "variant": ["none", "additive", "dot"],
    }


def test_an_unset_sweep_key_names_no_job(sweep):
    as_sweep(sweep, {"trainer.seed": "1,2", "variant": "???"}, ["experiment=x"])
    assert sweep_params(sweep / "multirun.yaml") is None
    assert missing_jobs([sweep], [p for p in sweep.iterdir() if p.is_dir()]) == []


def test_the_report_names_the_missing_jobs_also_from_exported_summaries(sweep, tmp_path):
    as_sweep(sweep, {"trainer.seed": "1,2,3", "variant": "none,additive,dot"}, ["experiment=x"])
    expected = (
        "MISSING 4 of the 9 jobs of the sweep sweep (no run yet): `trainer.seed=1 variant=dot`, "
        "`trainer.seed=2 variant=dot`, `trainer.seed=3 variant=none`, `trainer.seed=3 variant=dot`"
    )
    assert missing_jobs([sweep], [p for p in sweep.iterdir() if p.is_dir()]) == [expected]
    compare([sweep], tmp_path / "report", n_bootstrap=0)
    assert expected in (tmp_path / "report" / "comparison.md").read_text(encoding="utf-8")

    exported = tmp_path / "exported"
    export_runs([sweep], exported, keep_matrices=0)
    assert (exported / "sweep" / "multirun.yaml").read_text() == (
        sweep / "multirun.yaml"
    ).read_text()
    compare([exported], tmp_path / "report2", n_bootstrap=0)
    assert expected in (tmp_path / "report2" / "comparison.md").read_text(encoding="utf-8")
