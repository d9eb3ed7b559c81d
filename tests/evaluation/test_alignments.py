from __future__ import annotations

import numpy as np
import pytest

from seq2seq.evaluation.aer import alignment_error_rate, parse_pharaoh
from seq2seq.evaluation.alignments import (
    hard_alignment,
    intersect,
    to_pharaoh,
    to_word_level,
    word_groups,
    words_of,
)


def test_word_groups_follow_sentencepiece_markers():
    pieces = ["▁Ein", "▁Mann", "▁fähr", "t", "▁", ".", "</s>"]
    assert word_groups(pieces) == [[0], [1], [2, 3], [4, 5]]
    assert words_of(pieces) == ["Ein", "Mann", "fährt", "."]


def test_subword_to_word_by_hand():
    src = ["▁a", "▁b", "c", "</s>"]  # words: a | bc
    tgt = ["▁X", "y", "▁Z", "</s>"]  # words: Xy | Z
    weights = np.array(
        [
            [0.1, 0.6, 0.2, 0.1],  # X
            [0.3, 0.3, 0.3, 0.1],  # y
            [0.7, 0.1, 0.1, 0.1],  # Z
            [0.0, 0.0, 0.0, 1.0],  # </s>
        ]
    )
    expected = np.array(
        [
            [(0.1 + 0.3) / 2, ((0.6 + 0.2) + (0.3 + 0.3)) / 2],  # Xy: mean of rows, sum of b+c
            [0.7, 0.2],
        ]
    )
    np.testing.assert_allclose(to_word_level(weights, src, tgt), expected)
    assert hard_alignment(expected) == {(1, 0), (0, 1)}
    assert hard_alignment(expected, method="threshold", threshold=0.6) == {(1, 0), (0, 1)}
    assert hard_alignment(expected, method="threshold", threshold=0.15) == {
        (0, 0),
        (1, 0),
        (0, 1),
        (1, 1),
    }
    assert to_pharaoh({(1, 0), (0, 1)}) == "1-0 0-1"


def test_mismatched_shape_is_an_error():
    with pytest.raises(ValueError, match=r"matrix \(2, 2\) does not match 3 x 2 pieces"):
        to_word_level(np.zeros((2, 2)), ["▁a", "▁b"], ["▁x", "▁y", "▁z"])
    with pytest.raises(ValueError, match="valid: argmax, threshold"):
        hard_alignment(np.ones((1, 1)), method="max")


def test_parse_pharaoh_sure_and_possible():
    sure, possible = parse_pharaoh("0-0 1?2 3-4-P 5-5-S")
    assert sure == {(0, 0), (5, 5)}
    assert possible == {(0, 0), (1, 2), (3, 4), (5, 5)}
    with pytest.raises(ValueError, match="bad alignment link '1:2'"):
        parse_pharaoh("1:2")


def test_aer_by_hand():
    # gold: S = {0-0, 1-1}, P = S + {1-2}; predicted A = {0-0, 1-2, 2-2}
    sure, possible = parse_pharaoh("0-0 1-1 1?2")
    predicted = {(0, 0), (1, 2), (2, 2)}
    # |A∩S| = 1, |A∩P| = 2, |A| = 3, |S| = 2 -> AER = 1 - 3/5 = 0.4
    scores = alignment_error_rate([predicted], [sure], [possible])
    assert scores["aer"] == pytest.approx(0.4)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(0.5)
    perfect = alignment_error_rate([sure], [sure], [possible])
    assert perfect == {"aer": 0.0, "precision": 1.0, "recall": 1.0}


def test_intersection_of_directions():
    forward = {(0, 0), (1, 1), (2, 1)}
    backward = {(0, 0), (1, 2)}  # (tgt, src) links of the reverse model
    assert intersect(forward, backward) == {(0, 0), (2, 1)}
