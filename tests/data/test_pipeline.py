"""prepare_data's storage: flat memory-mapped ids, lazy training text, a checked cache.

The reference everywhere is the list storage the pipeline had before: every line read into a
list and stripped, pairs with an empty side dropped, each sentence encoded into a list of ids,
pairs longer than ``data.max_len`` dropped, ``BatchPlan`` over lists of int64 arrays.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

import seq2seq.data.texts as texts_module
from seq2seq.data.batching import BatchPlan
from seq2seq.data.pipeline import prepare_data
from seq2seq.data.texts import Lines
from seq2seq.data.token_store import entry_files
from tests.conftest import compose_config

WORDS = "ein mann eine frau zwei hunde spielen im schnee kind läuft über die straße".split()
STEMS = {"train": "train", "validation": "val", "test": "test_2016_flickr"}
SIZES = {"train": 1200, "validation": 40, "test": 30}
MAX_LEN = 30


def write_varied_corpus(directory: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Multi30k's layout, lengths 1-40 words, some empty sides and padded lines; the lines."""
    rng = np.random.default_rng(5)
    directory.mkdir(parents=True, exist_ok=True)
    lines = {}
    for split, stem in STEMS.items():
        sides = []
        for lang in ("de", "en"):
            words = WORDS if lang == "de" else [w.upper() for w in WORDS]
            side = [" ".join(rng.choice(words, rng.integers(1, 40))) for _ in range(SIZES[split])]
            if split == "train":  # an empty side now and then, and stray whitespace
                for i in rng.choice(len(side), 15, replace=False):
                    side[i] = rng.choice(["", "  ", "\t"])
                for i in rng.choice(len(side), 30, replace=False):
                    side[i] = f"  {side[i]}\t"
            (directory / f"{stem}.{lang}").write_text("\n".join(side) + "\n", encoding="utf-8")
            sides.append(side)
        lines[split] = (sides[0], sides[1])
    return lines


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    """(config, the raw lines): vocabulary of 120 pieces, small chunks (many per split)."""
    monkeypatch.setattr(texts_module, "CHUNK_PAIRS", 97)
    raw = write_varied_corpus(tmp_path / "corpus")
    cfg = compose_config(
        "data=multi30k",
        f"data.dir={tmp_path / 'corpus'}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "data.vocab.size=120",
        f"data.max_len={MAX_LEN}",
    )
    return cfg, raw


def list_storage(tokenizer, raw, split: str):
    """The split as the list pipeline built it: (src lines, tgt lines, src ids, tgt ids)."""
    src = [s.strip() for s in raw[split][0]]
    tgt = [t.strip() for t in raw[split][1]]
    if split == "train":
        keep = [i for i in range(len(src)) if src[i] and tgt[i]]
        src, tgt = [src[i] for i in keep], [tgt[i] for i in keep]
    src_ids = [np.asarray(s, np.int64) for s in tokenizer.encode_src(src)]
    tgt_ids = [np.asarray(t, np.int64) for t in tokenizer.encode_tgt(tgt)]
    if split == "train":
        keep = [
            i for i in range(len(src)) if len(src_ids[i]) <= MAX_LEN and len(tgt_ids[i]) <= MAX_LEN
        ]
        src, tgt = [src[i] for i in keep], [tgt[i] for i in keep]
        src_ids, tgt_ids = [src_ids[i] for i in keep], [tgt_ids[i] for i in keep]
    return src, tgt, src_ids, tgt_ids


def assert_same_batches(flat: BatchPlan, lists: BatchPlan, epochs=(0, 1, 2)) -> int:
    batches = 0
    for epoch in epochs:
        assert flat.num_batches(epoch) == lists.num_batches(epoch)
        for a, b in zip(flat.epoch(epoch), lists.epoch(epoch), strict=True):
            for field in ("src", "src_mask", "src_lengths", "tgt_in", "tgt_out", "tgt_mask"):
                assert torch.equal(getattr(a, field), getattr(b, field)), field
            assert torch.equal(a.indices, b.indices)
            batches += 1
    return batches


def test_flat_storage_gives_the_list_storage_batches(corpus):
    cfg, raw = corpus
    data = prepare_data(cfg.data)
    tokenizer = data.tokenizer
    for split in ("train", "validation", "test"):
        src, tgt, src_ids, tgt_ids = list_storage(tokenizer, raw, split)
        got = data.splits[split]
        assert list(got.src_text) == src and list(got.tgt_text) == tgt
        assert [s.tolist() for s in got.src_ids] == [s.tolist() for s in src_ids]
        assert [t.tolist() for t in got.tgt_ids] == [t.tolist() for t in tgt_ids]
    src, tgt, src_ids, tgt_ids = list_storage(tokenizer, raw, "train")
    # both filters acted: some empty sides, some pairs over max_len
    assert len(src) < SIZES["train"] - 15
    train = data.splits["train"]
    for shards in (1, 2, 3):
        for rank in range(shards):
            options = dict(max_tokens=300, seed=4, num_shards=shards, shard_id=rank)
            flat = BatchPlan(train.src_ids, train.tgt_ids, **options)
            lists = BatchPlan(src_ids, tgt_ids, **options)
            assert assert_same_batches(flat, lists) > 10
    validation = data.splits["validation"]
    _, _, val_src, val_tgt = list_storage(tokenizer, raw, "validation")
    assert_same_batches(
        BatchPlan(validation.src_ids, validation.tgt_ids, max_tokens=500, shuffle=False),
        BatchPlan(val_src, val_tgt, max_tokens=500, shuffle=False),
        epochs=(0,),
    )


def test_training_text_stays_lazy_and_ids_memory_mapped(corpus):
    """What a training process holds: no list of the training lines or of their ids."""
    cfg, raw = corpus
    data = prepare_data(cfg.data)
    train = data.splits["train"]
    assert isinstance(train.src_text, Lines) and isinstance(train.tgt_text, Lines)
    for ids in (train.src_ids, train.tgt_ids):
        assert isinstance(ids.tokens, np.memmap) and ids.tokens.dtype == np.uint16
    for split in ("validation", "test"):
        assert isinstance(data.splits[split].tgt_text, list)  # the references BLEU needs
        assert isinstance(data.splits[split].src_ids.tokens, np.memmap)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage,part",
    [(_truncate, "src_tokens"), (_flip_a_byte, "tgt_tokens"), (_truncate, "header")],
    ids=["truncated-tokens", "flipped-byte", "truncated-header"],
)
def test_a_corrupt_or_truncated_token_cache_is_rebuilt(corpus, caplog, damage, part):
    cfg, _ = corpus
    train = prepare_data(cfg.data, splits=("train",)).splits["train"]
    # copies: damaging a file in place would pull the pages from under its mapping (SIGBUS)
    first = [[s.tolist() for s in ids] for ids in (train.src_ids, train.tgt_ids)]
    [header] = (Path(cfg.data.cache_dir) / "ids").glob("tok_*.json")
    files = {"header": header, **entry_files(header)}
    original = {name: path.read_bytes() for name, path in files.items()}
    damage(files[part])
    with caplog.at_level(logging.WARNING, logger="seq2seq.data.pipeline"):
        again = prepare_data(cfg.data, splits=("train",)).splits["train"]
    assert len(caplog.messages) == 1
    assert caplog.messages[0].startswith(f"cached token ids {header} are corrupt (CorruptEntry: ")
    assert caplog.messages[0].endswith("): rebuilding them")
    assert [[s.tolist() for s in ids] for ids in (again.src_ids, again.tgt_ids)] == first
    assert {name: path.read_bytes() for name, path in files.items()} == original
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="seq2seq.data.pipeline"):
        prepare_data(cfg.data, splits=("train",))
    assert caplog.messages == []  # the rebuilt entry is read as it is


def test_tokenizing_shows_a_bar_over_each_split_only_when_asked(corpus, capsys):
    cfg, _ = corpus
    cfg.data.progress = True
    prepare_data(cfg.data)
    err = capsys.readouterr().err
    for split in ("train", "validation", "test"):
        assert f"tokenizing {split}:" in err
    assert f"/{SIZES['test']} [" in err  # with the total (pairs)
    cfg.data.progress = False  # encoded again (a new cache), silently
    cfg.data.cache_dir = str(Path(cfg.data.cache_dir).parent / "cache2")
    prepare_data(cfg.data)
    assert "tokenizing" not in capsys.readouterr().err
