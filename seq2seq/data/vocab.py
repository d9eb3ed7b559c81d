"""Subword vocabularies with sentencepiece: trained on the training split only, cached by hash.

Special ids are fixed for every model: pad=0, unk=1, bos=2, eos=3.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm

from .corpus import DataError

log = logging.getLogger(__name__)

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
# sentencepiece trains on at most this many sentences; a larger corpus is sampled by us, with
# a fixed seed (sentencepiece's own sampling differs between processes: DDP ranks and a resume
# elsewhere would train different vocabularies under one cache key)
SPM_SAMPLE = 2_000_000
SPM_SAMPLE_SEED = 1


def text_digest(*texts: Iterable[str]) -> str:
    """sha256 over sequences of sentences, each followed by a newline, each sequence by a NUL
    (a cache key component); read a block of sentences at a time."""
    digest = hashlib.sha256()
    for sentences in texts:
        lines = iter(sentences)
        while block := list(itertools.islice(lines, 10_000)):
            digest.update(("\n".join(block) + "\n").encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


class Concatenated:
    """Sequences of sentences one after the other, iterable any number of times (the text of
    a joint vocabulary, without a copy of either side)."""

    def __init__(self, *parts: Iterable[str]) -> None:
        self.parts = parts

    def __iter__(self):
        return itertools.chain.from_iterable(self.parts)


def _seeded_sample(count: int):
    """A boolean mask choosing :data:`SPM_SAMPLE` of ``count`` sentences with a fixed seed
    (RandomState's stream is frozen across numpy releases), or None when all of them fit."""
    if count <= SPM_SAMPLE:
        return None
    import numpy as np

    mask = np.zeros(count, dtype=bool)
    mask[np.random.RandomState(SPM_SAMPLE_SEED).choice(count, SPM_SAMPLE, replace=False)] = True
    return mask


def train_sentencepiece(
    sentences: Iterable[str],
    *,
    cache_dir: str | Path,
    vocab_size: int = 8000,
    model_type: str = "bpe",
    character_coverage: float = 1.0,
) -> Path:
    """Train (or reuse from ``cache_dir``) a sentencepiece model; return the ``.model`` path.

    ``sentences`` is read twice at most (the key and a count, then the training), never held: a
    list, or a lazy sequence over a corpus of any size. Above :data:`SPM_SAMPLE` sentences a
    seeded sample is trained on, so every process makes the same model. The cache key hashes
    the training sentences and every option, so a second run with the same data reuses the
    model, and any change trains a new one. The model is written to a temporary
    prefix and renamed, so an interrupted training never leaves a half-written model behind.
    """
    if model_type not in ("bpe", "unigram"):
        raise ValueError(f"sentencepiece model_type {model_type!r}; valid: bpe, unigram")
    if vocab_size < 8:
        raise ValueError(f"vocab size {vocab_size} is too small; use at least 8")
    options = f"{vocab_size}|{model_type}|{character_coverage}"
    count = 0  # the non-empty sentences, counted in the digest's pass over the text

    def counted():
        nonlocal count
        for sentence in sentences:
            count += bool(sentence.strip())
            yield sentence

    digest = text_digest(counted())
    sample = _seeded_sample(count)
    if sample is not None:  # a model of another sampling never stands in for this one
        options += f"|sample{SPM_SAMPLE}-seed{SPM_SAMPLE_SEED}"
    key = hashlib.sha256((digest + options).encode()).hexdigest()[:16]
    cache_dir = Path(cache_dir)
    model_path = cache_dir / f"spm_{model_type}{vocab_size}_{key}.model"
    if model_path.is_file():
        problem = _cached_model_problem(model_path, vocab_size)
        if problem is None:
            log.info("reusing sentencepiece model %s", model_path)
            return model_path
        log.warning(
            "cached sentencepiece model %s is corrupt (%s): rebuilding it", model_path, problem
        )
    non_empty = (s for s in sentences if s.strip())
    if sample is not None:
        log.info(
            "sentencepiece trains on %d of %d sentences (a sample, seed %d)",
            SPM_SAMPLE,
            count,
            SPM_SAMPLE_SEED,
        )
        non_empty = (s for i, s in enumerate(non_empty) if sample[i])
    first = next(non_empty, None)
    if first is None:
        raise DataError("empty corpus: no non-empty training sentence to train sentencepiece on")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        prefix = os.path.join(tmp, "spm")
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=itertools.chain([first], non_empty),
                model_prefix=prefix,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=character_coverage,
                pad_id=PAD_ID,
                unk_id=UNK_ID,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                input_sentence_size=SPM_SAMPLE,
                shuffle_input_sentence=True,
                num_threads=os.cpu_count() or 1,
                minloglevel=2,
            )
        except RuntimeError as err:
            match = re.search(r"<= (\d+)", str(err))
            if "Vocabulary size" in str(err) and match:
                raise DataError(
                    f"sentencepiece vocabulary size {vocab_size} is too large for this corpus; "
                    f"use data.vocab.size={match.group(1)} or less"
                ) from None
            raise
        os.replace(prefix + ".model", model_path)
        os.replace(prefix + ".vocab", model_path.with_suffix(".vocab"))
    log.info("trained sentencepiece model %s", model_path)
    return model_path


def _cached_model_problem(path: Path, vocab_size: int) -> str | None:
    """Why a cached model cannot be reused (unloadable, e.g. truncated, or of another size)."""
    try:
        pieces = spm.SentencePieceProcessor(model_file=str(path)).get_piece_size()
    except (RuntimeError, OSError) as err:
        return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return None if pieces == vocab_size else f"{pieces} pieces, not {vocab_size}"


class Tokenizer:
    """Source and target sentencepiece processors (the same one for a joint vocabulary)."""

    def __init__(self, src_model: str | Path, tgt_model: str | Path | None = None) -> None:
        self.src_model_path = str(src_model)
        self.tgt_model_path = str(tgt_model or src_model)
        self.src = spm.SentencePieceProcessor(model_file=self.src_model_path)
        self.tgt = (
            self.src
            if self.tgt_model_path == self.src_model_path
            else spm.SentencePieceProcessor(model_file=self.tgt_model_path)
        )

    @property
    def joint(self) -> bool:
        return self.src is self.tgt

    @property
    def src_vocab_size(self) -> int:
        return self.src.get_piece_size()

    @property
    def tgt_vocab_size(self) -> int:
        return self.tgt.get_piece_size()

    def encode_src(self, sentences: Sequence[str], num_threads: int = -1) -> list[list[int]]:
        """Subword ids of each sentence followed by EOS (``num_threads`` -1: every core)."""
        return self.src.encode(list(sentences), out_type=int, add_eos=True, num_threads=num_threads)

    def encode_tgt(self, sentences: Sequence[str], num_threads: int = -1) -> list[list[int]]:
        """Subword ids of each sentence (no BOS/EOS: batching adds them)."""
        return self.tgt.encode(list(sentences), out_type=int, num_threads=num_threads)

    def decode_tgt(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Detokenize target ids (special ids are dropped)."""
        return self.tgt.decode([[i for i in seq if i > EOS_ID] for seq in ids])

    def src_pieces(self, ids: Sequence[int]) -> list[str]:
        return [self.src.id_to_piece(i) for i in ids]

    def tgt_pieces(self, ids: Sequence[int]) -> list[str]:
        return [self.tgt.id_to_piece(i) for i in ids]


def build_tokenizer(
    train_src: Iterable[str],
    train_tgt: Iterable[str],
    *,
    cache_dir: str | Path,
    vocab_size: int = 8000,
    model_type: str = "bpe",
    joint: bool = True,
    character_coverage: float = 1.0,
) -> Tokenizer:
    """Train or reuse the sentencepiece model(s) on the training split; joint or one per side."""
    options = dict(
        cache_dir=cache_dir,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
    )
    if joint:
        return Tokenizer(train_sentencepiece(Concatenated(train_src, train_tgt), **options))
    return Tokenizer(
        train_sentencepiece(train_src, **options), train_sentencepiece(train_tgt, **options)
    )
