"""Seeded tiny Transformer and RNNs decode, greedy and beam 4, exactly what the decoders gave
before the decoding state became the model's own object (commit 34e5955): the same tokens, the
same scores, the same finished flags. Sentences leave their batch at different steps and the
Transformer's cache grows past CACHE_CHUNK, so every reorder path runs.

The output layers are scaled up 4x so that the untrained models' distributions are peaked, as a
trained model's are: in greedy search the best token leads the second by at least 6e-4 in
log-prob, far above what another CPU's float rounding could flip."""

from __future__ import annotations

import random

import pytest
import torch

from seq2seq.decoding import translate_batches
from seq2seq.models.rnn import RNNSeq2Seq
from seq2seq.models.transformer import TransformerSeq2Seq
from tests.conftest import tiny_transformer

V = 29


def sources() -> list[list[int]]:
    rng = random.Random(7)
    return [[rng.randrange(4, V) for _ in range(rng.randint(1, 13))] + [3] for _ in range(8)]


def transformer() -> TransformerSeq2Seq:
    model = tiny_transformer(V, V, tie_output=False)
    with torch.no_grad():
        model.output.weight.mul_(4.0)
    return model


def rnn(cell: str, attention: dict):
    torch.manual_seed(0)
    sizes = {"emb_size": 16, "hidden_size": 24, "cell": cell, "dropout": 0.0}
    model = RNNSeq2Seq.build(sizes, attention, src_vocab_size=V, tgt_vocab_size=V)
    with torch.no_grad():
        model.generator.weight.mul_(4.0)
    return model.eval()


MODELS = {
    "transformer": transformer,
    "rnn_gru_additive": lambda: rnn("gru", {"name": "additive"}),
    "rnn_lstm_general": lambda: rnn(
        "lstm", {"name": "multiplicative", "score": "general", "wiring": "luong"}
    ),
}

# (tokens, score rounded to 4 decimals, finished) per sentence, from commit 34e5955
EXPECTED = {
    "transformer/1": [
        ([15, 5, 15, 5, 15, 8], -3.4914, True),
        ([14, 5, 15, 5, 15, 5, 15, 5, 15], -5.4315, False),
        ([14, 5, 15, 5, 15, 8, 19], -3.3137, False),
        ([8, 15, 5, 12, 5, 8], -6.2094, True),
        ([14, 5, 15, 5, 14, 5, 6, 18, 19], -7.2584, False),
        ([14, 15, 5, 15, 8], -4.2918, True),
        ([15, 8, 15, 8, 15, 8], -5.4054, True),
        ([15, 8, 15, 25, 5, 15, 25, 5, 15, 5, 5, 5, 5, 5, 5, 5, 5, 14, 5], -17.3571, False),
    ],
    "transformer/4": [
        ([15, 5, 15, 5, 15, 8], -2.3035, True),
        ([14, 5, 15, 5, 15, 8], -2.0806, True),
        ([14, 5, 15, 5, 15, 8, 19], -2.1862, False),
        ([8, 15, 10, 5, 8], -3.9426, True),
        ([14, 5, 15, 5, 15, 25, 18, 19, 18], -3.0215, False),
        ([15, 5, 15, 5, 15, 8], -2.8255, True),
        ([15, 5, 15, 5, 15, 8], -2.7453, True),
        ([5, 15, 8], -2.6076, True),
    ],
    "rnn_gru_additive/1": [
        ([22, 19, 4, 25, 12, 11, 9, 5, 11, 9, 5, 1, 28, 11, 9], -36.3429, False),
        ([7, 16], -6.7139, True),
        ([22, 5, 15, 9, 5, 15, 9], -16.1387, False),
        ([22, 19, 4, 25, 9, 9, 5, 1, 18, 12, 6, 5], -29.0665, False),
        ([7, 16], -6.5294, True),
        ([22, 19, 4, 25, 12, 11, 9, 5, 1, 17, 19, 12, 11, 9, 5, 1, 18, 12, 6], -46.5687, False),
        (
            [22, 19, 4, 25, 26, 10, 6, 5, 1, 18, 12, 6, 5, 1, 18, 12, 6, 5, 1, 18, 12],
            -50.3305,
            False,
        ),
        ([22, 19, 4, 18, 16], -13.8255, True),
    ],
    "rnn_gru_additive/4": [
        ([22, 19, 12, 11, 9, 5, 11, 9, 5, 22, 19, 4, 5, 11, 9], -17.1869, False),
        ([7, 16], -5.6495, True),
        ([22, 5, 22, 5, 11, 9, 5], -10.1771, False),
        ([22, 19, 4, 25, 26, 10, 6, 5, 11, 9, 5, 1], -15.2915, False),
        ([7, 16], -5.4943, True),
        ([22, 19, 4, 16], -8.5974, True),
        ([22, 19, 12, 11, 9], -9.696, True),
        ([22, 19, 18, 16], -8.3984, True),
    ],
    "rnn_lstm_general/1": [
        ([28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28], -44.7814, False),
        ([], -3.0355, True),
        ([20, 1, 1, 1, 20, 1, 1], -21.1403, False),
        ([6, 26, 20, 1, 1, 20, 17], -24.9735, True),
        ([], -3.0778, True),
        (
            [6, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28],
            -56.022,
            False,
        ),
        (
            [28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28],
            -61.961,
            False,
        ),
        ([6, 28, 28, 6, 19, 6, 19, 6, 19, 6, 19, 6, 19, 6, 19, 6, 19, 6, 19], -57.5043, False),
    ],
    "rnn_lstm_general/4": [
        ([], -3.1148, True),
        ([], -3.0355, True),
        ([20, 1, 1, 1, 20, 1, 1], -13.9474, False),
        ([], -3.1315, True),
        ([], -3.0778, True),
        ([], -3.0577, True),
        ([], -3.0754, True),
        ([6, 19, 6, 19, 6, 19, 6, 19, 6, 19, 6, 19, 6, 19, 6, 19, 6, 19, 6], -24.9566, False),
    ],
}


@pytest.mark.parametrize("beam_size", [1, 4])
@pytest.mark.parametrize("family", list(MODELS))
def test_decoding_gives_the_pinned_hypotheses(family, beam_size):
    hyps = translate_batches(
        MODELS[family](),
        sources(),
        beam_size=beam_size,
        batch_size=3,
        alpha=0.6,
        max_len_ratio=1.5,
        max_len_offset=4,
        workers=1,
    )
    expected = EXPECTED[f"{family}/{beam_size}"]
    assert [(h.tokens, h.finished) for h in hyps] == [(t, f) for t, _, f in expected]
    assert [h.score for h in hyps] == pytest.approx([s for _, s, _ in expected], abs=1e-3)
