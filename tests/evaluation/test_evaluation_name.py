"""eval/<name>/: two evaluations that differ in what they decode never share a record."""

import pytest
from omegaconf import OmegaConf

from seq2seq.config import EvaluateConfig
from seq2seq.evaluation.evaluate import evaluation_name


def named(**options) -> str:
    cfg = OmegaConf.merge(OmegaConf.structured(EvaluateConfig), {"run_dir": "r", **options})
    return evaluation_name(cfg, run_tokenizer="13a")


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({}, "test_beam5"),  # the historical name: best.pt, fp32, every line
        ({"checkpoint": "avg_last5"}, "test_beam5_avg_last5"),
        ({"checkpoint": "best.pt"}, "test_beam5"),
        ({"checkpoint": "last", "limit": 10}, "test_beam5_last_first10"),
        ({"precision": "int8", "split": "validation"}, "validation_beam5_int8"),
        ({"checkpoint": "avg_last5", "name": "mine"}, "mine"),  # an explicit name wins
        ({"bleu": {"tokenize": "13a"}}, "test_beam5"),  # the run's own tokenizer
        ({"bleu": {"tokenize": "intl"}}, "test_beam5_tok-intl"),
    ],
)
def test_the_name_says_what_was_decoded(options, name):
    assert named(**options) == name


def test_best_and_an_average_get_two_records():
    assert named() != named(checkpoint="avg_last5")
