"""Tokenized splits on disk: each side's ids as one flat token array plus offsets, memory-mapped.

An entry is five files beside each other: ``{name}.{side}_tokens.npy`` (every sequence's ids
end to end; uint16 when the vocabulary fits, else int32) and ``{name}.{side}_offsets.npy``
(int64, pairs + 1: where each sequence starts) for side src and tgt, and the header
``{name}.json``, written last, with the pair count and each file's size and sha256. A
truncated, altered or missing file is found on load (:class:`CorruptEntry`); the caller
rebuilds the entry. :class:`EntryWriter` builds an entry chunk by chunk, so memory stays
bounded by one chunk whatever the corpus size, and moves the finished files into place by
rename: a reader never sees half an entry, and processes writing the same entry at once
(DDP ranks) leave one whole copy.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

SIDES = ("src", "tgt")
FORMAT_VERSION = 1


class CorruptEntry(ValueError):
    """A cache entry that cannot be used as it is; the message says what is wrong."""


class FlatIds(Sequence):
    """Variable-length id sequences over one flat array: row ``i`` is ``tokens[starts[i]:ends[i]]``.

    ``len(ids[i])`` is ``lengths[i]``; indexing gives an int64 copy of one row; slicing and
    :meth:`take` give views that share ``tokens``, so a memory-mapped ``tokens`` is read only
    where rows are used.
    """

    def __init__(self, tokens: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
        self.tokens, self.starts, self.ends = tokens, starts, ends
        self.lengths = np.asarray(ends, dtype=np.int64) - np.asarray(starts, dtype=np.int64)

    @classmethod
    def from_offsets(cls, tokens: np.ndarray, offsets: np.ndarray) -> FlatIds:
        return cls(tokens, offsets[:-1], offsets[1:])

    @classmethod
    def from_sequences(cls, sequences: Sequence[Sequence[int]]) -> FlatIds:
        """Pack id lists (tests, small inputs) into one in-memory int64 array."""
        tokens, lengths = pack(sequences, np.int64)
        return cls.from_offsets(tokens, offsets_of(lengths))

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def num_tokens(self) -> int:
        return int(self.lengths.sum())

    def __getitem__(self, key):
        if isinstance(key, slice):
            return FlatIds(self.tokens, self.starts[key], self.ends[key])
        start, end = int(self.starts[key]), int(self.ends[key])
        return np.asarray(self.tokens[start:end], dtype=np.int64)

    def take(self, rows: np.ndarray) -> FlatIds:
        """The rows ``rows`` (an index array), in that order."""
        return FlatIds(self.tokens, self.starts[rows], self.ends[rows])

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest id type of a vocabulary: uint16 up to 65536 pieces, else int32."""
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.int32)


def pack(sequences: Sequence[Sequence[int]], dtype) -> tuple[np.ndarray, np.ndarray]:
    """Id lists -> (their ids end to end as ``dtype``, (n,) int64 lengths)."""
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    flat = np.fromiter(
        itertools.chain.from_iterable(sequences), dtype=dtype, count=int(lengths.sum())
    )
    return flat, lengths


def offsets_of(lengths: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def entry_files(header: Path) -> dict[str, Path]:
    """The data files of the entry whose header is ``header`` (``{name}.json``)."""
    stem = header.with_suffix("")
    return {
        f"{side}_{part}": stem.with_name(f"{stem.name}.{side}_{part}.npy")
        for side in SIDES
        for part in ("tokens", "offsets")
    }


def file_sha256(path: Path) -> str:
    # read, not mapped: checking an entry adds nothing to the process's resident memory
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def _npy_header(dtype: np.dtype, length: int) -> bytes:
    buffer = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False}
    np.lib.format.write_array_header_1_0(buffer, {**header, "shape": (length,)})
    return buffer.getvalue()


class _TokenFile:
    """A 1-d .npy file written in pieces: a header for length 0 first, the real one at the end
    (numpy pads headers to 64 bytes and leaves room for the shape to grow: same size)."""

    def __init__(self, directory: Path, dtype: np.dtype) -> None:
        self.dtype, self.length = dtype, 0
        fd, self.path = tempfile.mkstemp(dir=directory, suffix=".npy.tmp")
        self.handle = os.fdopen(fd, "wb")
        self.header_size = len(_npy_header(dtype, 0))
        self.handle.write(_npy_header(dtype, 0))

    def append(self, values: np.ndarray) -> None:
        self.handle.write(np.ascontiguousarray(values, dtype=self.dtype).tobytes())
        self.length += len(values)

    def close(self) -> None:
        header = _npy_header(self.dtype, self.length)
        if len(header) != self.header_size:  # numpy's padding rule changed
            raise RuntimeError(f"npy header grew from {self.header_size} to {len(header)} bytes")
        self.handle.seek(0)
        self.handle.write(header)
        self.handle.close()


class EntryWriter:
    """Build an entry from chunks of (source id lists, target id lists); :meth:`commit` moves
    it into place. Use as a context manager: leaving it without a commit removes the parts."""

    def __init__(self, header: Path, dtypes: dict[str, np.dtype]) -> None:
        self.header, self.pairs = header, 0
        header.parent.mkdir(parents=True, exist_ok=True)
        self.tokens = {side: _TokenFile(header.parent, dtypes[side]) for side in SIDES}
        self.lengths: dict[str, list[np.ndarray]] = {side: [] for side in SIDES}
        self.tmp: list[str] = [f.path for f in self.tokens.values()]

    def add(self, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]]) -> None:
        if len(src) != len(tgt):
            raise ValueError(f"{len(src)} source but {len(tgt)} target sequences")
        for side, seqs in (("src", src), ("tgt", tgt)):
            flat, lengths = pack(seqs, self.tokens[side].dtype)
            self.tokens[side].append(flat)
            self.lengths[side].append(lengths)
        self.pairs += len(src)

    def commit(self) -> None:
        """Finish the files, rename them into place, then write the header that vouches for them."""
        files = entry_files(self.header)
        written: dict[str, dict] = {}
        for side in SIDES:
            self.tokens[side].close()
            lengths = np.concatenate([np.zeros(0, np.int64), *self.lengths[side]])
            fd, offsets_tmp = tempfile.mkstemp(dir=self.header.parent, suffix=".npy.tmp")
            self.tmp.append(offsets_tmp)
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, offsets_of(lengths))
            for part, tmp in (("tokens", self.tokens[side].path), ("offsets", offsets_tmp)):
                written[f"{side}_{part}"] = {
                    "bytes": os.path.getsize(tmp),
                    "sha256": file_sha256(Path(tmp)),
                }
                os.replace(tmp, files[f"{side}_{part}"])
        meta = {"version": FORMAT_VERSION, "pairs": self.pairs, "files": written}
        fd, header_tmp = tempfile.mkstemp(dir=self.header.parent, suffix=".json.tmp")
        self.tmp.append(header_tmp)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=1)
        os.replace(header_tmp, self.header)
        self.tmp = []

    def __enter__(self) -> EntryWriter:
        return self

    def __exit__(self, *exc) -> None:
        for side in SIDES:
            if not self.tokens[side].handle.closed:
                self.tokens[side].handle.close()
        for tmp in self.tmp:
            Path(tmp).unlink(missing_ok=True)


def load_entry(header: Path, pairs: int) -> tuple[FlatIds, FlatIds]:
    """The (source, target) ids of an entry, memory-mapped; CorruptEntry when any file is
    missing, of another size or content than its header says, or does not hold ``pairs``
    sequences."""
    try:
        meta = json.loads(header.read_text(encoding="utf-8"))
        version, count, recorded = meta["version"], meta["pairs"], meta["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CorruptEntry(f"unreadable header {header.name}: {err}") from None
    if not isinstance(recorded, dict) or not all(isinstance(v, dict) for v in recorded.values()):
        raise CorruptEntry(f"unreadable header {header.name}: its files are not a mapping")
    if version != FORMAT_VERSION or count != pairs:
        raise CorruptEntry(f"header says version {version}, {count} pairs; expected {pairs}")
    arrays = {}
    for name, path in entry_files(header).items():
        if not path.is_file():
            raise CorruptEntry(f"{path.name} is missing")
        expected = recorded.get(name, {})
        size = path.stat().st_size
        if size != expected.get("bytes"):
            raise CorruptEntry(f"{path.name} has {size} bytes, not {expected.get('bytes')}")
        if file_sha256(path) != expected.get("sha256"):
            raise CorruptEntry(f"{path.name} does not match its checksum")
        arrays[name] = np.load(path, mmap_mode="r")
    out = []
    for side in SIDES:
        tokens, offsets = arrays[f"{side}_tokens"], arrays[f"{side}_offsets"]
        if (
            offsets.ndim != 1
            or len(offsets) != pairs + 1
            or offsets[0] != 0
            or offsets[-1] != len(tokens)
            or bool((np.diff(offsets) < 0).any())
        ):
            raise CorruptEntry(f"{side} offsets do not describe {pairs} sequences")
        out.append(FlatIds.from_offsets(tokens, offsets))
    return out[0], out[1]
