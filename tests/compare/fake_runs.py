"""Fake run directories for the compare tests: what seq2seq-train leaves, written by hand (no
training), so the report's numbers can be computed by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

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
    """A tiny local corpus in ``root``: a fake run's test split (its sources and references are
    copied beside the run's hypotheses, as the final test writes them)."""
    root.mkdir()
    for stem in ("train", "val", "test"):
        (root / f"{stem}.de").write_text("".join(s + "\n" for s in TEST_SOURCES))
        (root / f"{stem}.en").write_text("".join(s + "\n" for s in TEST_REFERENCES))
    return root


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
    history.jsonl, hyps/test.txt (with the corpus's test.src.txt and test.ref.txt) and (``matrices``: per sentence (weights, source pieces) or
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
        for name, lang in (("test.src.txt", "de"), ("test.ref.txt", "en")):
            shutil.copyfile(corpus / f"test.{lang}", run / "hyps" / name)
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
