"""Shared fixtures: the real Hydra config composed with CPU, tiny-size and tmp_path overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from seq2seq.composition import compose
from seq2seq.config import default_data_dir
from seq2seq.models.transformer import TransformerSeq2Seq


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
