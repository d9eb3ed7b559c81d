"""Every error a user can fix is one line whose advice works when followed: each test below
follows the advice of its message (or the README's example) and checks that it succeeds. The
Python API raises one documented type, ConfigError, with the CLI's line and its own names."""

from __future__ import annotations

import errno
import shutil
import tempfile
from pathlib import Path

import pytest

import seq2seq
from seq2seq.errors import ConfigError, Seq2SeqError
from tests.cli.runner import assert_one_error_line, run_main
from tests.conftest import needs_multi30k, tiny_overrides
from tests.fixtures.hub_mirror import build_mirror

pytestmark = needs_multi30k


@pytest.fixture(scope="module")
def hub_mirror(tmp_path_factory) -> Path:
    return build_mirror(tmp_path_factory.mktemp("hub_mirror"))


def test_the_readme_data_columns_example_works_as_printed(hub_mirror, tmp_path, capfd, monkeypatch):
    """README: ``data.columns.src=translation.en data.columns.tgt=translation.de`` (no ``+``)."""
    argv = [
        "data.hub_id=wmt/wmt14",
        "data.hub_config=de-en",
        "data.dir=null",
        f"data.hub_mirror={hub_mirror}",
        "data.columns.src=translation.en",
        "data.columns.tgt=translation.de",
        "data.src=en",
        "data.tgt=de",
        "data.vocab.size=60",
        f"data.cache_dir={tmp_path / 'cache'}",
    ]
    result = run_main("prepare", argv, capfd, monkeypatch)
    assert result.code == 0, result.stderr[-3000:]
    assert "train" in result.stdout and "120 pairs" in result.stdout


def test_a_misspelt_data_columns_key_names_the_valid_ones(capfd, monkeypatch):
    result = run_main("prepare", ["data.columns.sorce=x"], capfd, monkeypatch)
    assert_one_error_line(
        result,
        "unknown key 'data.columns.sorce' (ColumnsConfig); valid keys of data.columns: src, tgt",
    )


def test_the_api_raises_the_clis_line_as_a_config_error(capfd, monkeypatch):
    cli = run_main("train", ["trainer.max_step=5"], capfd, monkeypatch)
    assert cli.code == 1 and len(cli.error_lines) == 1
    with pytest.raises(ConfigError) as err:
        seq2seq.train(["trainer.max_step=5"])
    assert f"error: {err.value}" == cli.error_lines[0]
    assert "valid keys of trainer:" in str(err.value) and "max_steps" in str(err.value)
    assert "+trainer" not in str(err.value)  # Hydra's advice (append the key) fails too
    # the advice: a valid key from the list
    assert seq2seq.compose(["trainer.max_steps=5"]).trainer.max_steps == 5
    with pytest.raises(ConfigError) as err:
        seq2seq.compose(["attention=foo"])
    assert "Could not find 'attention/foo'; valid: additive" in str(err.value)


def test_the_apis_finished_run_error_names_its_own_argument(tiny_run, shared_cache):
    run_dir = tiny_run(through_cli=True)
    overrides = tiny_overrides(shared_cache)
    with pytest.raises(Seq2SeqError) as err:
        seq2seq.train(overrides, run_dir=run_dir, device="cpu")
    message = str(err.value)
    assert "hydra.run.dir" not in message
    assert "choose another run_dir, add trainer.resume=true" in message
    # the advice: trainer.resume=true (nothing to do for the same budget; the run comes back)
    run = seq2seq.train([*overrides, "trainer.resume=true"], run_dir=run_dir, device="cpu")
    assert run.run_dir == run_dir and run.checkpoint.name == "best.pt"


def test_average_on_a_read_only_run_advises_a_copy_that_works(
    tiny_run, tmp_path, capfd, monkeypatch
):
    run_dir = tiny_run()
    for step in (2, 4):
        shutil.copy(
            run_dir / "checkpoints" / "best.pt", run_dir / "checkpoints" / f"step_{step}.pt"
        )
    real_mkstemp = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):  # noqa: A002 - mkstemp's own name
        if dir is not None and Path(dir).resolve() == (run_dir / "checkpoints").resolve():
            raise OSError(errno.EROFS, "Read-only file system", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    result = run_main("average", [f"run_dir={run_dir}", "last=2"], capfd, monkeypatch)
    out = run_dir / "checkpoints" / "avg_last2.pt"
    assert_one_error_line(
        result,
        f"cannot save checkpoint {out}: {out.parent} is not writable (Read-only file system); "
        f"average a writable copy of the run (cp -r {run_dir} COPY, then seq2seq-average "
        "run_dir=COPY last=2)",
    )
    assert "hydra.run.dir" not in result.stderr and "free some space" not in result.stderr
    copy = Path(shutil.copytree(run_dir, tmp_path / "COPY"))  # the advice
    ok = run_main("average", [f"run_dir={copy}", "last=2"], capfd, monkeypatch)
    assert ok.code == 0, ok.stderr[-3000:]
    assert (copy / "checkpoints" / "avg_last2.pt").is_file()


EDGE_LINES = ["Ein Hund läuft im Schnee.", "", "   ", "Hund " * 60, "Ein Mann\tfährt."]


def test_the_api_and_the_cli_translate_edge_inputs_alike(tiny_run, capfd, monkeypatch):
    run_dir = tiny_run()
    cli = run_main(
        "translate",
        [f"run_dir={run_dir}", "device=cpu"],
        capfd,
        monkeypatch,
        stdin="".join(line + "\n" for line in EDGE_LINES).encode(),
    )
    assert cli.code == 0, cli.stderr[-3000:]
    api = seq2seq.load(run_dir, device="cpu").translate(EDGE_LINES)
    assert cli.stdout.split("\n")[:-1] == [hyp.text for hyp in api]
    with pytest.raises(ConfigError) as err:
        seq2seq.load(run_dir, device="cpu").translate(["x"], beam_size=0)
    bad = run_main(
        "translate",
        [f"run_dir={run_dir}", "device=cpu", "decode.beam_size=0"],
        capfd,
        monkeypatch,
        stdin=b"x\n",
    )
    assert bad.error_lines == [f"error: {err.value}"]
