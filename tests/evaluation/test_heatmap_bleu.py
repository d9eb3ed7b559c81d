from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from seq2seq.errors import Seq2SeqError
from seq2seq.evaluation.bleu import corpus_scores
from seq2seq.evaluation.heatmap import save_alignment_png


def test_heatmap_png_is_a_valid_image(tmp_path):
    src = [f"▁w{i}" for i in range(30)]
    tgt = [f"▁v{i}" for i in range(28)]
    weights = np.random.default_rng(0).dirichlet(np.ones(30), size=28)
    path = save_alignment_png(tmp_path / "a.png", weights, src, tgt, title="test")
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
    # 0.32 inch per token at 100 dpi plus margins: readable for 30-token sentences
    assert width == int(100 * (2.0 + 0.32 * 30)) and height == int(100 * (1.5 + 0.32 * 28))


def test_heatmap_rejects_wrong_token_counts(tmp_path):
    with pytest.raises(ValueError, match="does not match 2 target x 3 source tokens"):
        save_alignment_png(tmp_path / "b.png", np.ones((2, 2)), ["a", "b", "c"], ["x", "y"])


def test_bleu_equals_sacrebleu_cli(tmp_path):
    refs = [
        "A man is riding a bike.",
        "Two dogs play in the snow.",
        "The girl smiles at the camera.",
    ]
    hyps = [
        "A man rides a bike.",
        "two dogs are playing in snow .",
        "The girl smiles at the camera.",
    ]
    (tmp_path / "ref.txt").write_text("\n".join(refs) + "\n")
    (tmp_path / "hyp.txt").write_text("\n".join(hyps) + "\n")
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "sacrebleu",
            str(tmp_path / "ref.txt"),
            "-i",
            str(tmp_path / "hyp.txt"),
            "-b",
            "-w",
            "2",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    scores = corpus_scores(hyps, refs)
    assert scores["bleu"] == pytest.approx(float(cli.stdout.strip()), abs=0.01)
    assert scores["bleu_lc"] >= scores["bleu"]  # lowercasing can only add matches here
    assert scores["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")


def test_bleu_line_count_mismatch():
    with pytest.raises(Seq2SeqError, match="2 hypotheses but 3 references"):
        corpus_scores(["a", "b"], ["a", "b", "c"])
