from __future__ import annotations

import pytest

from seq2seq.data.corpus import DataError
from seq2seq.data.pipeline import prepare_data
from seq2seq.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer, train_sentencepiece
from tests.conftest import compose_config, needs_multi30k

SENTENCES = [f"the cat number {i} sat on the mat with {i % 7} dogs" for i in range(200)]


def test_special_ids_and_cache_reuse(tmp_path):
    path = train_sentencepiece(SENTENCES, cache_dir=tmp_path, vocab_size=60)
    tok = Tokenizer(path)
    assert [tok.src.id_to_piece(i) for i in (PAD_ID, UNK_ID, BOS_ID, EOS_ID)] == [
        "<pad>",
        "<unk>",
        "<s>",
        "</s>",
    ]
    mtime = path.stat().st_mtime_ns
    again = train_sentencepiece(SENTENCES, cache_dir=tmp_path, vocab_size=60)
    assert again == path and again.stat().st_mtime_ns == mtime  # reused, not retrained
    other = train_sentencepiece(SENTENCES, cache_dir=tmp_path, vocab_size=61)
    assert other != path  # any option change is a new model
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".model") == sorted(
        [path.name, other.name]
    )


def test_encode_adds_eos_to_source_only(tmp_path):
    tok = Tokenizer(train_sentencepiece(SENTENCES, cache_dir=tmp_path, vocab_size=60))
    src, tgt = tok.encode_src(["the cat"])[0], tok.encode_tgt(["the cat"])[0]
    assert src[-1] == EOS_ID and src[:-1] == tgt and EOS_ID not in tgt
    assert tok.decode_tgt([tgt + [EOS_ID, PAD_ID]]) == ["the cat"]


def test_vocab_too_large_suggests_a_size(tmp_path):
    with pytest.raises(
        DataError, match=r"vocabulary size 5000 is too large .* use data.vocab.size=\d+ or less"
    ):
        train_sentencepiece(SENTENCES, cache_dir=tmp_path, vocab_size=5000)


def test_only_empty_lines(tmp_path):
    with pytest.raises(DataError, match="empty corpus"):
        train_sentencepiece(["", "  "], cache_dir=tmp_path, vocab_size=60)


@needs_multi30k
def test_multi30k_validation_round_trip(shared_cache):
    cfg = compose_config(f"data.cache_dir={shared_cache}", "data.vocab.size=8000")
    data = prepare_data(cfg.data, splits=("validation",))
    split = data.splits["validation"]
    decoded = data.tokenizer.decode_tgt([ids.tolist() for ids in split.tgt_ids])
    exact = sum(d == r for d, r in zip(decoded, split.tgt_text, strict=True))
    print(f"sentencepiece round trip: {exact}/{len(decoded)} validation sentences exact")
    assert exact >= 0.99 * len(decoded)
    src_decoded = data.tokenizer.src.decode([ids.tolist() for ids in split.src_ids])
    assert sum(d == r for d, r in zip(src_decoded, split.src_text, strict=True)) >= 0.99 * len(
        decoded
    )


@needs_multi30k
def test_tokenized_cache_gives_same_ids(shared_cache):
    cfg = compose_config(
        f"data.cache_dir={shared_cache}",
        "data.vocab.size=300",
        "data.train_limit=500",
        "data.eval_limit=50",
    )
    first = prepare_data(cfg.data)
    second = prepare_data(cfg.data)
    assert len(list((shared_cache / "ids").glob("tok_*.json"))) >= 3
    for split in ("train", "validation", "test"):
        a, b = first.splits[split], second.splits[split]
        assert len(a) == len(b) == (500 if split == "train" else 50)
        assert all((x == y).all() for x, y in zip(a.src_ids, b.src_ids, strict=True))
        assert all((x == y).all() for x, y in zip(a.tgt_ids, b.tgt_ids, strict=True))


SAMPLED_TRAINING = """
import hashlib, random, sys
import seq2seq.data.vocab as vocab
vocab.SPM_SAMPLE = 300  # a corpus larger than the sample: the sampled path
rng = random.Random(3)
words = [f"w{i}" for i in range(400)]
lines = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 12))) for _ in range(3000)]
path = vocab.train_sentencepiece(lines, cache_dir=sys.argv[1], vocab_size=120)
# the pieces and their scores (the file's bytes also hold the temporary training prefix)
sp = vocab.spm.SentencePieceProcessor(model_file=str(path))
pieces = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
print(path.name, hashlib.sha256(repr(pieces).encode()).hexdigest())
"""


def test_a_sampled_vocabulary_is_the_same_in_every_process(tmp_path, caplog):
    """Above SPM_SAMPLE sentences each process (a DDP rank, a resume elsewhere) trains the same
    model: the sample is ours and seeded (sentencepiece's own sampling differs per process)."""
    import subprocess
    import sys

    outputs = [
        subprocess.run(
            [sys.executable, "-c", SAMPLED_TRAINING, str(tmp_path / f"cache{i}")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for i in range(2)
    ]
    assert outputs[0] == outputs[1]  # same cache name, same pieces (they differed before)
    import seq2seq.data.vocab as vocab

    assert vocab._seeded_sample(300) is None  # what fits is never sampled
    mask = vocab._seeded_sample(vocab.SPM_SAMPLE + 5)
    assert mask.sum() == vocab.SPM_SAMPLE and len(mask) == vocab.SPM_SAMPLE + 5
