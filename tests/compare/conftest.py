"""Fixtures of the compare tests: a tiny corpus and a sweep of fake runs over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compare.fake_runs import ONE_HOT, UNIFORM, fake_run, history, write_corpus


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "corpus")


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
