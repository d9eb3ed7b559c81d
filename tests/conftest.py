"""Shared fixtures: the real Hydra config composed with CPU, tiny-size and tmp_path overrides,
and the session's tiny trained runs (``tiny_run``)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from seq2seq.composition import compose
from seq2seq.config import default_data_dir
from seq2seq.models.transformer import TransformerSeq2Seq
from tests.cli.runner import run_main


def pytest_configure(config) -> None:
    """Under pytest-xdist (make test: one worker per core) each worker's torch gets its share
    of the cores, so that the workers' intra-op threads do not outnumber them."""
    import os

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


REPO = Path(__file__).resolve().parent.parent
MULTI30K = default_data_dir("multi30k")
TATOEBA = default_data_dir("tatoeba_eng_fra")

needs_multi30k = pytest.mark.skipif(MULTI30K is None, reason="local Multi30k copy not found")

TINY = [
    "trainer.device=cpu",
    "trainer.precision=fp32",  # exact comparisons (resume, DDP) are meant in fp32
    "trainer.num_threads=1",  # tiny ops: one thread beats two, above all on a busy machine
    "data.train_limit=256",
    "data.eval_limit=16",
    "data.max_tokens=512",
    "data.vocab.size=300",
    "trainer.max_steps=4",
    "trainer.max_epochs=null",
    "trainer.val_every=2",
    "trainer.log_every=1",
    "decode.beam_size=2",
    # drawing a heatmap costs more than a tiny run's training (3 figures per validation were
    # 70% of its time); tests/training/test_loggers.py draws them
    "trainer.heatmaps=0",
]
TINY_RNN = ["model.emb_size=16", "model.hidden_size=24"]
TINY_TRANSFORMER = [
    "model=transformer",
    "model.d_model=32",
    "model.heads=2",
    "model.ff_size=64",
    "model.num_layers=1",
]


def tiny_transformer(src_vocab_size: int, tgt_vocab_size: int, **options) -> TransformerSeq2Seq:
    """An untrained Transformer in eval mode, its weights drawn after ``torch.manual_seed(0)``
    (the same arguments give the same weights): d_model 32, 4 heads, feed-forward 64, 2 encoder
    and 2 decoder layers, no dropout, where ``options`` say nothing else."""
    torch.manual_seed(0)
    sizes = dict(d_model=32, heads=4, ff_size=64, encoder_layers=2, decoder_layers=2, dropout=0.0)
    return TransformerSeq2Seq(
        src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size, **(sizes | options)
    ).eval()


def tiny_overrides(shared_cache: Path, *extra: str) -> list[str]:
    """TINY (+ TINY_RNN unless ``model=transformer`` is among ``extra``) and the shared cache."""
    sizes = [] if "model=transformer" in extra else TINY_RNN
    return [*TINY, *sizes, f"data.cache_dir={shared_cache}", *extra]


def readme_python_block(heading: str) -> str:
    """The first ```python block after ``heading`` in README.md or docs/*.md (examples that
    tests run)."""
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        if heading in text:
            return re.search(r"```python\n(.*?)```", text[text.index(heading) :], re.S).group(1)
    raise KeyError(f"no heading {heading!r} in README.md or docs/*.md")


def compose_config(*overrides: str, config_name: str = "train") -> DictConfig:
    """The real config tree composed as the commands and the API compose it
    (:func:`seq2seq.composition.compose`), the overrides given one by one."""
    return compose(overrides, config_name)


@pytest.fixture
def one_thread():
    """Tiny models and tensors are fastest single-threaded (and immune to a busy machine); a
    module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One sentencepiece/tokenization cache for the whole session (tests share trained models)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def tiny_cfg(shared_cache, tmp_path) -> DictConfig:
    """Tiny CPU config writing its cache under the session cache."""
    return compose_config(*TINY, *TINY_RNN, f"data.cache_dir={shared_cache}")


class TinyRuns:
    """The session's finished tiny runs: one per distinct overrides, trained on first request,
    so a run that many tests read is trained once.

    A shared run is read-only: a test works on its own copy (``tiny_run``; a module-scoped
    fixture uses :meth:`copy`). Each request checks that no file of the run changed since it
    was trained, so a test that wrote into it fails the next test that asks for it.
    """

    def __init__(self, root: Path, shared_cache: Path) -> None:
        self.root, self.shared_cache = root, shared_cache
        self._runs: dict[tuple, tuple[Path, dict]] = {}

    def trained(self, *overrides: str, through_cli: bool = False) -> Path:
        """The run of ``tiny_overrides(shared_cache, *overrides)``, trained by ``train(cfg)`` or,
        ``through_cli``, by seq2seq-train's ``main()`` (then it has Hydra's .hydra/ records)."""
        key = (through_cli, *overrides)
        if key not in self._runs:
            if MULTI30K is None and not any(o.startswith("data.dir=") for o in overrides):
                pytest.skip("local Multi30k copy not found")
            run_dir = self.root / f"run{len(self._runs)}"
            if through_cli:
                _train_through_cli(tiny_overrides(self.shared_cache, *overrides), run_dir)
            else:
                from seq2seq.training import train  # on first use: most sessions train nothing

                train(
                    compose_config(
                        *tiny_overrides(self.shared_cache, *overrides), f"run_dir={run_dir}"
                    )
                )
            assert json.loads((run_dir / "metrics.json").read_text())["status"] == "finished"
            self._runs[key] = (run_dir, _file_stamps(run_dir))
        run_dir, stamps = self._runs[key]
        assert _file_stamps(run_dir) == stamps, (
            f"a test wrote into the shared tiny run {run_dir} {overrides}: work on a copy"
        )
        return run_dir

    def copy(self, *overrides: str, into: Path, through_cli: bool = False) -> Path:
        """A copy of :meth:`trained`'s run at ``into`` (which must not exist), free to change."""
        return Path(shutil.copytree(self.trained(*overrides, through_cli=through_cli), into))


def _train_through_cli(overrides: list[str], run_dir: Path) -> None:
    class _NoCapture:  # run_main wants capfd; training here only needs the exit code
        @staticmethod
        def readouterr():
            return "", ""

    with pytest.MonkeyPatch.context() as monkeypatch:
        result = run_main(
            "train", [*overrides, f"hydra.run.dir={run_dir}"], _NoCapture, monkeypatch
        )
    assert result.code == 0, result.stderr[-3000:]


def _file_stamps(run_dir: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``run_dir``: its relative path -> (size, modification time in ns)."""
    return {
        str(path.relative_to(run_dir)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in run_dir.rglob("*")
        if path.is_file()
    }


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory, shared_cache) -> TinyRuns:
    return TinyRuns(tmp_path_factory.mktemp("tiny_runs"), shared_cache)


@pytest.fixture
def tiny_run(tiny_runs, tmp_path) -> Callable[..., Path]:
    """``tiny_run(*overrides, through_cli=False)``: this test's own copy (under tmp_path) of the
    session's tiny run of those overrides (``TinyRuns.trained``): the test may change it."""
    copies: list[Path] = []

    def copy(*overrides: str, through_cli: bool = False) -> Path:
        into = tmp_path / ("tiny_run" if not copies else f"tiny_run{len(copies) + 1}")
        copies.append(tiny_runs.copy(*overrides, into=into, through_cli=through_cli))
        return copies[-1]

    return copy
