"""Corpus -> sentencepiece -> cached id arrays, per split: the data step of every command.

Nothing here holds a whole corpus in Python objects: the text is read from the split's Arrow
table in chunks (:mod:`.texts`), encoded a chunk at a time with sentencepiece's threaded batch
encoding, and stored as flat memory-mapped arrays (:mod:`.token_store`); the training split's
lines stay lazy, only validation and test are held as lists (the references of BLEU).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import option_value
from ..progress import progress_bar
from .corpus import DataError
from .source import load_configured
from .texts import PairTexts
from .token_store import CorruptEntry, EntryWriter, FlatIds, load_entry, token_dtype
from .vocab import Tokenizer, build_tokenizer, text_digest

log = logging.getLogger(__name__)


@dataclass
class TokenizedSplit:
    """Raw text and subword ids of one split, aligned line by line.

    From :func:`prepare_data`: ids are :class:`~.token_store.FlatIds` (row ``i`` an int64
    array), texts lists for validation/test and lazy :class:`~.texts.Lines` for train."""

    src_text: Sequence[str]
    tgt_text: Sequence[str]
    src_ids: Sequence[np.ndarray]  # each ends with EOS
    tgt_ids: Sequence[np.ndarray]  # no BOS/EOS

    def __len__(self) -> int:
        return len(self.src_text)


@dataclass
class PreparedData:
    tokenizer: Tokenizer
    splits: dict[str, TokenizedSplit]


def encode_threads() -> int:
    """The cores this process may run on (sentencepiece's own default ignores CPU affinity)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else -1


def tokenize_cached(
    tokenizer: Tokenizer,
    texts: PairTexts,
    cache_dir: Path,
    *,
    desc: str = "tokenizing",
    progress: bool | None = False,
) -> tuple[FlatIds, FlatIds]:
    """Encode a split chunk by chunk, or load it from ``cache_dir`` when the same text and
    models were seen; an entry that fails its checks is rebuilt, with a warning. ``progress``:
    a bar over the pairs encoded (None: only on a terminal)."""
    models = hashlib.sha256()
    for path in (tokenizer.src_model_path, tokenizer.tgt_model_path):
        models.update(Path(path).read_bytes())
    digest = text_digest(texts.column("src"), texts.column("tgt"))
    key = hashlib.sha256((models.hexdigest() + digest).encode()).hexdigest()[:20]
    header = cache_dir / f"tok_{key}.json"
    if header.is_file():
        try:
            return load_entry(header, len(texts))
        except CorruptEntry as err:
            log.warning(
                "cached token ids %s are corrupt (%s: %s): rebuilding them",
                header,
                type(err).__name__,
                str(err)[:120],
            )
    dtypes = {
        "src": token_dtype(tokenizer.src_vocab_size),
        "tgt": token_dtype(tokenizer.tgt_vocab_size),
    }
    threads = encode_threads()
    bar = progress_bar(len(texts), progress, desc=desc, unit="pair")
    with bar, EntryWriter(header, dtypes) as writer:
        for src, tgt in texts.chunks():
            writer.add(tokenizer.encode_src(src, threads), tokenizer.encode_tgt(tgt, threads))
            bar.update(len(src))
        writer.commit()
    return load_entry(header, len(texts))


def _load(data: Any, cache_dir: Path):
    return load_configured(data, cache_dir=str(cache_dir / "hf"))


def _split_texts(corpus, data: Any, split: str) -> PairTexts:
    """The stripped source and target lines of ``split``, cut to train_limit / eval_limit."""
    limit = data.train_limit if split == "train" else data.eval_limit
    part = corpus[split]
    if limit is not None:
        if limit < 1:
            raise DataError(
                f"data.{'train' if split == 'train' else 'eval'}_limit must be positive, got {limit}"
            )
        part = part.select(range(min(limit, len(part))))  # a contiguous slice: no copy
    return PairTexts(part)


def load_split_texts(data: Any, split: str) -> tuple[list[str], list[str]]:
    """Raw source and reference lines of one split (evaluation: no tokenizer training)."""
    corpus = _load(data, Path(data.cache_dir).expanduser())
    if split not in corpus:
        raise DataError(
            f"split {split!r} is not configured for {data.name}; valid: {', '.join(corpus)}"
        )
    return _split_texts(corpus, data, split).lists()


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
    train = texts["train"]
    keep = train.non_empty()
    if not len(keep):
        raise DataError("empty corpus: every training pair has an empty side")
    if len(keep) < len(train):
        log.info("dropped %d training pairs with an empty side", len(train) - len(keep))
        texts["train"] = train = train.select(keep)

    vocab = data.vocab
    tokenizer = build_tokenizer(
        train.column("src"),
        train.column("tgt"),
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
        split_texts = texts[split]
        src_ids, tgt_ids = tokenize_cached(
            tokenizer,
            split_texts,
            cache_dir / "ids",
            desc=f"tokenizing {split}",
            progress=data.get("progress"),
        )
        if split != "train":
            prepared[split] = TokenizedSplit(*split_texts.lists(), src_ids, tgt_ids)
            continue
        max_len = data.max_len
        keep = np.flatnonzero((src_ids.lengths <= max_len) & (tgt_ids.lengths <= max_len))
        if not len(keep):
            raise DataError(
                f"every training pair is longer than data.max_len={max_len} subwords; raise data.max_len"
            )
        if len(keep) < len(src_ids):
            log.info(
                "dropped %d training pairs longer than data.max_len=%d",
                len(src_ids) - len(keep),
                data.max_len,
            )
            split_texts = split_texts.select(keep)
            src_ids, tgt_ids = src_ids.take(keep), tgt_ids.take(keep)
        # lazy lines: the training text is read again only where something asks for it
        prepared[split] = TokenizedSplit(
            split_texts.column("src"), split_texts.column("tgt"), src_ids, tgt_ids
        )
    return PreparedData(tokenizer=tokenizer, splits=prepared)
