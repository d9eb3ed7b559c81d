"""A synthetic parallel corpus whose true alignment is known: the end-to-end check of attention.

Each source sentence is a random sequence of words ``sa, sb, ...`` (V of them, letters only,
so sentencepiece can keep each word whole); its target is the same sentence reversed, word by
word mapped to ``ta, tb, ...`` (so source word i aligns with target word n-1-i). A model that learned to translate must attend anti-diagonally, and the gold
alignment of every test pair is written in Pharaoh format (``src-tgt``, 0-based) beside it.

    python -m seq2seq.data.synthetic --out data/reverse      # then: seq2seq-train data=reverse
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SPLIT_SIZES = {"train": 8000, "valid": 200, "test": 200}


def word(prefix: str, index: int) -> str:
    """``prefix`` + the letters of ``index`` in base 26 (``a``, ``b``, ..., ``ba``, ...)."""
    letters = ""
    while True:
        index, digit = divmod(index, 26)
        letters = chr(ord("a") + digit) + letters
        if index == 0:
            return prefix + letters


def reverse_pair(words: list[int]) -> tuple[str, str, str]:
    """(source, target, gold alignment) of one sentence of word ids."""
    n = len(words)
    source = " ".join(word("s", w) for w in words)
    target = " ".join(word("t", w) for w in reversed(words))
    gold = " ".join(f"{i}-{n - 1 - i}" for i in range(n))
    return source, target, gold


def make_reverse_corpus(
    out_dir: str | Path,
    *,
    vocab: int = 40,
    min_len: int = 3,
    max_len: int = 12,
    sizes: dict[str, int] | None = None,
    seed: int = 0,
) -> Path:
    """Write ``{split}.src``, ``{split}.tgt`` and ``{split}.align`` for train / valid / test."""
    if not 1 <= min_len <= max_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got {min_len} and {max_len}")
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, size in (sizes or SPLIT_SIZES).items():
        rows = [
            reverse_pair(rng.integers(0, vocab, rng.integers(min_len, max_len + 1)).tolist())
            for _ in range(size)
        ]
        for suffix, column in (("src", 0), ("tgt", 1), ("align", 2)):
            (out_dir / f"{split}.{suffix}").write_text(
                "".join(r[column] + "\n" for r in rows), encoding="utf-8"
            )
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", default="data/reverse", help="output directory (default: data/reverse)"
    )
    parser.add_argument("--vocab", type=int, default=40)
    parser.add_argument("--min-len", type=int, default=3)
    parser.add_argument("--max-len", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = make_reverse_corpus(
        args.out, vocab=args.vocab, min_len=args.min_len, max_len=args.max_len, seed=args.seed
    )
    print(f"wrote the reversal corpus to {out} (train/valid/test .src .tgt .align)")


if __name__ == "__main__":
    main()
