"""Corpus -> sentencepiece -> cached id sequences, per split: the data step of every command."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import option_value
from .corpus import DataError
from .source import load_configured
from .vocab import Tokenizer, build_tokenizer, text_digest

log = logging.getLogger(__name__)


@dataclass
class TokenizedSplit:
    """Raw text and subword ids of one split, aligned line by line."""

    src_text: list[str]
    tgt_text: list[str]
    src_ids: list[np.ndarray]  # each ends with EOS
    tgt_ids: list[np.ndarray]  # no BOS/EOS

    def __len__(self) -> int:
        return len(self.src_text)


@dataclass
class PreparedData:
    tokenizer: Tokenizer
    splits: dict[str, TokenizedSplit]


def _pack(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(s) for s in seqs])
    flat = np.fromiter((i for s in seqs for i in s), dtype=np.int32, count=int(offsets[-1]))
    return flat, offsets


def _unpack(flat: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return np.split(flat.astype(np.int64), offsets[1:-1])


def _load_ids(path: Path, pairs: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A cache entry's ids; ValueError when it does not hold ``pairs`` whole sequences."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in ("src", "src_off", "tgt", "tgt_off")}
    for side in ("src", "tgt"):
        flat, offsets = arrays[side], arrays[f"{side}_off"]
        if len(offsets) != pairs + 1 or offsets[0] != 0 or offsets[-1] != len(flat):
            raise ValueError(f"{side} offsets do not describe {pairs} sequences")
    return (
        _unpack(arrays["src"], arrays["src_off"]),
        _unpack(arrays["tgt"], arrays["tgt_off"]),
    )


def tokenize_cached(
    tokenizer: Tokenizer, src_text: list[str], tgt_text: list[str], cache_dir: Path
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Encode a split, or load it from ``cache_dir`` when the same text and models were seen."""
    models = hashlib.sha256()
    for path in (tokenizer.src_model_path, tokenizer.tgt_model_path):
        models.update(Path(path).read_bytes())
    key = hashlib.sha256(
        (models.hexdigest() + text_digest(src_text, tgt_text)).encode()
    ).hexdigest()[:20]
    path = cache_dir / f"ids_{key}.npz"
    if path.is_file():
        try:
            return _load_ids(path, len(src_text))
        except Exception as err:  # noqa: BLE001 - any unreadable entry is rebuilt
            log.warning(
                "cached token ids %s are corrupt (%s: %s): rebuilding them",
                path,
                type(err).__name__,
                str(err).strip().splitlines()[0][:120] if str(err).strip() else "",
            )
    src_ids, tgt_ids = tokenizer.encode_src(src_text), tokenizer.encode_tgt(tgt_text)
    cache_dir.mkdir(parents=True, exist_ok=True)
    src_flat, src_off = _pack(src_ids)
    tgt_flat, tgt_off = _pack(tgt_ids)
    # unique temp name: several processes (DDP ranks) may tokenize the same split at once
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".npz")
    with os.fdopen(fd, "wb") as handle:
        np.savez(handle, src=src_flat, src_off=src_off, tgt=tgt_flat, tgt_off=tgt_off)
    os.replace(tmp, path)
    return [np.asarray(s, dtype=np.int64) for s in src_ids], [
        np.asarray(t, dtype=np.int64) for t in tgt_ids
    ]


def _load(data: Any, cache_dir: Path):
    return load_configured(data, cache_dir=str(cache_dir / "hf"))


def _split_texts(corpus, data: Any, split: str) -> tuple[list[str], list[str]]:
    """Stripped source and target lines of ``split``, cut to train_limit / eval_limit."""
    limit = data.train_limit if split == "train" else data.eval_limit
    part = corpus[split]
    if limit is not None:
        if limit < 1:
            raise DataError(
                f"data.{'train' if split == 'train' else 'eval'}_limit must be positive, got {limit}"
            )
        part = part.select(range(min(limit, len(part))))
    table = part.with_format("arrow")[:]  # honours select(); far faster than row access
    return (
        [s.strip() for s in table.column("src").to_pylist()],
        [t.strip() for t in table.column("tgt").to_pylist()],
    )


def load_split_texts(data: Any, split: str) -> tuple[list[str], list[str]]:
    """Raw source and reference lines of one split (evaluation: no tokenizer training)."""
    corpus = _load(data, Path(data.cache_dir).expanduser())
    if split not in corpus:
        raise DataError(
            f"split {split!r} is not configured for {data.name}; valid: {', '.join(corpus)}"
        )
    return _split_texts(corpus, data, split)


def prepare_data(
    data: Any, *, splits: tuple[str, ...] = ("train", "validation", "test")
) -> PreparedData:
    """Load the corpus named by the data config, train/reuse sentencepiece, tokenize (cached).

    ``data`` is the ``data`` config node (DataConfig). Train pairs with an empty side or longer
    than ``max_len`` subwords are dropped and counted; validation and test are never filtered or
    reordered, so hypotheses line up with references.
    """
    cache_dir = Path(data.cache_dir).expanduser()
    corpus = _load(data, cache_dir)
    texts = {
        split: _split_texts(corpus, data, split)
        for split in dict.fromkeys(("train", *splits))
        if split in corpus
    }
    train_src, train_tgt = texts["train"]
    keep = [i for i, (s, t) in enumerate(zip(train_src, train_tgt, strict=True)) if s and t]
    if not keep:
        raise DataError("empty corpus: every training pair has an empty side")
    if len(keep) < len(train_src):
        log.info("dropped %d training pairs with an empty side", len(train_src) - len(keep))
        texts["train"] = ([train_src[i] for i in keep], [train_tgt[i] for i in keep])
        train_src, train_tgt = texts["train"]

    vocab = data.vocab
    tokenizer = build_tokenizer(
        train_src,
        train_tgt,
        cache_dir=cache_dir / "spm",
        vocab_size=vocab.size,
        model_type=option_value(vocab.type),
        joint=vocab.joint,
        character_coverage=vocab.character_coverage,
    )
    prepared: dict[str, TokenizedSplit] = {}
    for split in splits:
        if split not in texts:
            raise DataError(f"split {split!r} is not configured in data.files for {data.name}")
        src_text, tgt_text = texts[split]
        src_ids, tgt_ids = tokenize_cached(tokenizer, src_text, tgt_text, cache_dir / "ids")
        if split == "train":
            max_len = data.max_len
            keep = [
                i
                for i in range(len(src_ids))
                if len(src_ids[i]) <= max_len and len(tgt_ids[i]) <= max_len
            ]
            if not keep:
                raise DataError(
                    f"every training pair is longer than data.max_len={max_len} subwords; raise data.max_len"
                )
            if len(keep) < len(src_ids):
                log.info(
                    "dropped %d training pairs longer than data.max_len=%d",
                    len(src_ids) - len(keep),
                    data.max_len,
                )
                src_text = [src_text[i] for i in keep]
                tgt_text = [tgt_text[i] for i in keep]
                src_ids = [src_ids[i] for i in keep]
                tgt_ids = [tgt_ids[i] for i in keep]
        prepared[split] = TokenizedSplit(src_text, tgt_text, src_ids, tgt_ids)
    return PreparedData(tokenizer=tokenizer, splits=prepared)
