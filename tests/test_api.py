"""The Python API: README's example runs as written; translate's attention has the documented
shapes; importing seq2seq changes nothing global."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import needs_multi30k, readme_python_block


def readme_example() -> str:
    return readme_python_block("### Python API")


@needs_multi30k
@pytest.mark.slow
def test_the_readme_example_runs(tmp_path, shared_cache):
    code = readme_example().replace('"outputs/api_demo"', repr(str(tmp_path / "api_demo")))
    code = code.replace('["debug=default"]', f'["debug=default", "data.cache_dir={shared_cache}"]')
    assert str(tmp_path) in code  # the example trains where the test says
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=900,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "api_demo" / "metrics.json").is_file()
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"\(\d+, \d+\)", lines[-2])  # word_attention.shape


@needs_multi30k
def test_translate_returns_matrices_of_the_documented_shapes(shared_cache, tmp_path):
    import seq2seq
    from tests.conftest import TINY, TINY_RNN

    overrides = [*TINY, *TINY_RNN, f"data.cache_dir={shared_cache}"]
    run = seq2seq.train(overrides, run_dir=tmp_path / "run", device="cpu")
    assert run.checkpoint.name == "best.pt" and run.step in (2, 4)  # best of 2 validations
    assert repr(run).startswith("Run(")
    texts = ["Ein Hund läuft im Schnee.", "Zwei Männer."]
    hyps = run.translate(texts, beam_size=2, return_attention=True)
    assert len(hyps) == 2
    for hyp in hyps:
        rows = len(hyp.tgt_pieces)  # target pieces (+ EOS when it ended with one)
        assert hyp.attention.shape == (rows, len(hyp.src_pieces))
        assert hyp.src_pieces[-1] == "</s>"
        np.testing.assert_allclose(hyp.attention.sum(axis=1), 1.0, atol=1e-4)
        assert hyp.word_attention.shape == (len(hyp.tgt_words), len(hyp.src_words))
        assert hyp.src_words == ["Ein", "Hund", "läuft", "im", "Schnee."] or hyp is hyps[1]
        assert all(0 <= s < len(hyp.src_words) for s, _ in hyp.word_alignment)
    lists = run.translate(texts, beam_size=3, nbest=3)
    assert [len(candidates) for candidates in lists] == [3, 3]
    assert lists[0][0].text == run.translate(texts[:1], beam_size=3)[0].text
    assert [h.score for h in lists[0]] == sorted((h.score for h in lists[0]), reverse=True)
    assert lists[0][0].attention is None  # only when asked for
    with pytest.raises(TypeError, match="a list of sentences"):
        run.translate("Ein Hund.")
    with pytest.raises(ValueError, match="unknown decode option 'beem'"):
        run.translate(texts, beem=2)


def test_importing_seq2seq_changes_nothing_global():
    code = """
import sys, datasets, matplotlib
backend = matplotlib.rcParams._get_backend_or_none()
bars = datasets.are_progress_bars_disabled()
import seq2seq, seq2seq.api, seq2seq.data.corpus, seq2seq.evaluation.heatmap, seq2seq.compare.plots
assert matplotlib.rcParams._get_backend_or_none() == backend, matplotlib.rcParams._get_backend_or_none()
assert datasets.are_progress_bars_disabled() == bars
assert "matplotlib.pyplot" not in sys.modules
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
