"""seq2seq-translate with location attention and sources longer than its max_src_len: no sentence
aborts its batch. The long lines are translated, their positions past max_src_len get no
attention weight, the short lines of the same batch translate as they do alone, and one warning
per process says what happens, with the count."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from seq2seq.cli.translate import translate
from seq2seq.evaluation.evaluate import decode_texts
from seq2seq.evaluation.run import load_run
from seq2seq.modules.attention import location
from tests.conftest import compose_config, needs_multi30k

pytestmark = needs_multi30k

MAX_SRC_LEN = 24
SHORT = ["Ein Hund.", "Eine Frau.", "Zwei Männer.", "Ein Kind."]
LONG = [" ".join(["Ein Hund läuft im Park."] * 8), " ".join(["Eine Frau lacht."] * 10)]
LINES = [SHORT[0], LONG[0], SHORT[1], SHORT[2], LONG[1], SHORT[3]]


@pytest.fixture
def location_run(tiny_run) -> Path:
    """The location-attention run (max_src_len 24), copied (or trained) before the test, so
    that training's warnings stay out of the test's caplog."""
    return tiny_run("attention=location", f"attention.max_src_len={MAX_SRC_LEN}")


def test_a_long_line_never_aborts_its_batch(location_run, monkeypatch, caplog):
    run = load_run(location_run, device="cpu")
    lengths = [len(ids) for ids in run.tokenizer.encode_src(LINES)]
    assert [n > MAX_SRC_LEN for n in lengths] == [line in LONG for line in LINES], lengths
    # one batch of all six lines, decoded by one stream
    overrides = [f"run_dir={location_run}", "device=cpu", "decode.workers=1", "decode.batch_size=8"]
    monkeypatch.setattr(location, "_WARNED", False)  # training may have said it already
    with caplog.at_level(logging.WARNING, logger=location.__name__):
        greedy = translate([*overrides, "decode.beam_size=1"], LINES)
        beam = translate([*overrides, "decode.beam_size=3"], LINES)
    warnings = [r.getMessage() for r in caplog.records if r.name == location.__name__]
    assert warnings == [
        f"location attention addresses only the first {MAX_SRC_LEN} source positions: 2 "
        f"sentences in a batch of {len(LINES)} are longer; their later positions get no "
        "attention weight (raise attention.max_src_len to address them; said once per process)"
    ]
    for outputs in (greedy, beam):
        assert len(outputs) == len(LINES) and all(isinstance(o, str) for o in outputs)
    # the short lines translate as they do alone: the long ones changed nothing in the batch
    alone = translate([*overrides, "decode.beam_size=3"], SHORT)
    assert [beam[LINES.index(line)] for line in SHORT] == alone
    assert [beam[LINES.index(line)] for line in LONG] == translate(
        [*overrides, "decode.beam_size=3"], LONG
    )
    # and the long lines' attention stops at max_src_len: exactly 0 on the later positions
    decode = compose_config(
        "run_dir=x", "decode.beam_size=1", "decode.workers=1", config_name="evaluate"
    ).decode
    hyps = decode_texts(
        run, LINES, decode, device=torch.device("cpu"), amp_dtype=None, need_attn=True
    )
    for hyp, n, line in zip(hyps, lengths, LINES, strict=True):
        assert hyp.attn.shape[1] == n
        if line in LONG:
            assert (hyp.attn[:, MAX_SRC_LEN:] == 0).all()
            assert (hyp.attn[:, :MAX_SRC_LEN].sum(-1) > 0.999).all()
