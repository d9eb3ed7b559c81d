from __future__ import annotations

import json

import numpy as np
import pytest

from seq2seq.data.token_store import (
    CorruptEntry,
    EntryWriter,
    FlatIds,
    entry_files,
    file_sha256,
    load_entry,
    token_dtype,
)


def random_pairs(n: int, seed: int = 0, high: int = 300) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    src = [rng.integers(0, high, rng.integers(0, 30)).tolist() for _ in range(n)]
    tgt = [rng.integers(0, high, rng.integers(0, 30)).tolist() for _ in range(n)]
    return src, tgt


def write_entry(header, src, tgt, *, chunk: int = 7, vocab: int = 300) -> None:
    dtypes = {"src": token_dtype(vocab), "tgt": token_dtype(vocab)}
    with EntryWriter(header, dtypes) as writer:
        for start in range(0, len(src), chunk):
            writer.add(src[start : start + chunk], tgt[start : start + chunk])
        writer.commit()


def test_an_entry_written_in_chunks_loads_back_memory_mapped(tmp_path):
    src, tgt = random_pairs(50)
    header = tmp_path / "tok_x.json"
    write_entry(header, src, tgt)
    loaded_src, loaded_tgt = load_entry(header, 50)
    assert [s.tolist() for s in loaded_src] == src
    assert [t.tolist() for t in loaded_tgt] == tgt
    assert isinstance(loaded_src.tokens, np.memmap) and loaded_src.tokens.dtype == np.uint16
    assert loaded_src.lengths.tolist() == [len(s) for s in src]
    assert loaded_src[3].dtype == np.int64  # rows come out as int64, whatever the storage
    # the header and the four arrays, nothing left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [header.name, *(p.name for p in entry_files(header).values())]
    )
    with pytest.raises(CorruptEntry, match="header says version 1, 50 pairs; expected 49"):
        load_entry(header, 49)


def test_ids_beyond_uint16_are_stored_as_int32(tmp_path):
    assert token_dtype(65536) == np.uint16 and token_dtype(65537) == np.int32
    src, tgt = random_pairs(10, high=100_000)
    write_entry(tmp_path / "big.json", src, tgt, vocab=100_000)
    loaded, _ = load_entry(tmp_path / "big.json", 10)
    assert loaded.tokens.dtype == np.int32 and [s.tolist() for s in loaded] == src


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _files_of_another_type(path):
    """Valid JSON of the wrong shape (a hand edit, another tool's file)."""
    path.write_text(json.dumps(json.loads(path.read_text()) | {"files": None}))


@pytest.mark.parametrize(
    "damage,file,message",
    [
        (_truncate, "src_tokens", r"src_tokens\.npy has \d+ bytes, not \d+"),
        (_flip_last_byte, "tgt_tokens", r"tgt_tokens\.npy does not match its checksum"),
        (_flip_last_byte, "src_offsets", r"src_offsets\.npy does not match its checksum"),
        (lambda path: path.unlink(), "tgt_offsets", r"tgt_offsets\.npy is missing"),
        (_truncate, "header", r"unreadable header tok_x\.json"),
        (_files_of_another_type, "header", r"unreadable header tok_x\.json: its files are not"),
    ],
)
def test_a_damaged_entry_is_refused_naming_the_file(tmp_path, damage, file, message):
    src, tgt = random_pairs(40)
    header = tmp_path / "tok_x.json"
    write_entry(header, src, tgt)
    damage(header if file == "header" else entry_files(header)[file])
    with pytest.raises(CorruptEntry, match=message):
        load_entry(header, 40)


def test_offsets_that_do_not_describe_the_tokens_are_refused(tmp_path):
    """A consistent header over wrong offsets (e.g. written by a bug) is refused too."""
    src, tgt = random_pairs(20)
    header = tmp_path / "tok_x.json"
    write_entry(header, src, tgt)
    offsets_path = entry_files(header)["tgt_offsets"]
    offsets = np.load(offsets_path)
    offsets[5] = offsets[6] + 1  # not monotonic
    np.save(offsets_path, offsets)
    meta = json.loads(header.read_text())
    meta["files"]["tgt_offsets"] = {
        "bytes": offsets_path.stat().st_size,
        "sha256": file_sha256(offsets_path),
    }
    header.write_text(json.dumps(meta))
    with pytest.raises(CorruptEntry, match="tgt offsets do not describe 20 sequences"):
        load_entry(header, 20)


def test_an_interrupted_build_leaves_nothing(tmp_path):
    dtypes = {"src": np.dtype(np.uint16), "tgt": np.dtype(np.uint16)}
    with pytest.raises(ValueError, match="3 source but 2 target sequences"):
        with EntryWriter(tmp_path / "tok_x.json", dtypes) as writer:
            writer.add([[1]], [[2]])
            writer.add([[1], [2], [3]], [[4], [5]])
    assert list(tmp_path.iterdir()) == []


def test_flat_ids_views_share_the_tokens():
    seqs = [[5, 6, 3], [3], [], [7, 8, 9, 10, 3]]
    ids = FlatIds.from_sequences(seqs)
    assert len(ids) == 4 and ids.num_tokens == 9 and ids.lengths.tolist() == [3, 1, 0, 5]
    assert [s.tolist() for s in ids] == seqs
    assert [s.tolist() for s in ids[1:3]] == seqs[1:3]
    assert [s.tolist() for s in ids.take(np.array([3, 0]))] == [seqs[3], seqs[0]]
    assert ids[-1].tolist() == seqs[-1]
    assert ids.take(np.array([3, 0])).tokens is ids.tokens
